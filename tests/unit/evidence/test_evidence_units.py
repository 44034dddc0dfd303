"""Evidence without the stack: the canonical form, the key file, `evidence keygen`, the bundle."""

from __future__ import annotations

import base64
import datetime as dt
import json
import stat
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mailbox_service.cli.main import main
from mailbox_service.errors import ConfigurationError, Gone
from mailbox_service.evidence.bundle import NO_KEY_ID_BACKFILL, build_evidence
from mailbox_service.evidence.canonical import canonical_json, rfc3339
from mailbox_service.evidence.keys import EvidenceSigner, key_id_of, write_key_file
from mailbox_service.evidence.service import gone_message


def _python_canonical(value: object) -> bytes:
    """The same form from the standard library: what a verifier without msgspec writes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_canonical_json_sorts_every_level_and_has_no_whitespace() -> None:
    value = {"b": 1, "a": {"z": [3, {"y": None, "x": True}], "é": "ü"}, "B": False}
    encoded = canonical_json(value)
    assert encoded == b'{"B":false,"a":{"z":[3,{"x":true,"y":null}],"\xc3\xa9":"\xc3\xbc"},"b":1}'
    assert encoded == _python_canonical(value)


def test_canonical_json_escapes_only_what_json_requires() -> None:
    text = 'quote " backslash \\ newline \n unit \x1f tab \t slash / lt < amp & \u2028 €'
    assert canonical_json({"s": text}) == _python_canonical({"s": text})


def test_times_are_rfc3339_utc_milliseconds() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    at = dt.datetime(2026, 11, 30, 2, 3, 4, 567891, tzinfo=berlin)
    assert canonical_json({"at": at}) == b'{"at":"2026-11-30T01:03:04.567Z"}'
    # Naive times are UTC, as pymongo returns them.
    assert rfc3339(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"


@pytest.mark.parametrize("bad", [1.5, b"bytes", {1: "int key"}, {"set": {1, 2}}])
def test_values_without_one_spelling_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="canonical JSON"):
        canonical_json({"value": bad})


def test_pem_and_raw_key_files_load_to_the_same_key(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    (tmp_path / "k.pem").write_bytes(pem)
    (tmp_path / "k.raw").write_bytes(raw)
    from_pem = EvidenceSigner.from_file(tmp_path / "k.pem")
    from_raw = EvidenceSigner.from_file(tmp_path / "k.raw")
    assert from_pem.public_raw == from_raw.public_raw
    assert from_pem.key_id == from_raw.key_id == key_id_of(from_pem.public_raw)
    # Ed25519 is deterministic: both sign the same bytes identically, and PyNaCl agrees.
    assert from_pem.sign(b"x") == from_raw.sign(b"x")
    nacl.signing.VerifyKey(from_pem.public_raw).verify(b"x", from_raw.sign(b"x"))


def test_a_bad_key_file_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"MAILBOX_EVIDENCE_KEY_FILE.*cannot read"):
        EvidenceSigner.from_file(tmp_path / "missing.pem")
    (tmp_path / "short").write_bytes(b"\x00" * 31)
    with pytest.raises(ConfigurationError, match=r"exactly 32 raw bytes \(got 31 bytes\)"):
        EvidenceSigner.from_file(tmp_path / "short")
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n")
    with pytest.raises(ConfigurationError, match="not a readable unencrypted PEM"):
        EvidenceSigner.from_file(tmp_path / "broken.pem")


def test_an_rsa_key_is_refused(tmp_path: Path) -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        EvidenceSigner.from_file(tmp_path / "rsa.pem")


def test_keygen_writes_a_private_file_prints_the_public_key_and_never_overwrites(
    tmp_path: Path,
) -> None:
    path = tmp_path / "evidence.pem"
    result = CliRunner().invoke(main, ["evidence", "keygen", str(path)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = EvidenceSigner.from_file(path)
    assert f"key id:     {signer.key_id}" in result.output
    assert f"public key: {base64.b64encode(signer.public_raw).decode()}" in result.output
    assert signer.public_pem in result.output
    assert "PRIVATE" not in result.output

    before = path.read_bytes()
    again = CliRunner().invoke(main, ["evidence", "keygen", str(path)])
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert path.read_bytes() == before


def test_write_key_file_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.write_text("something else")
    with pytest.raises(ConfigurationError, match="already exists"):
        write_key_file(path)
    assert path.read_text() == "something else"


def test_a_backfilled_document_has_no_key_and_says_why() -> None:
    at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    document = {
        "_id": "d1",
        "type": "invoice",
        "account_id": "a1",
        "source": "erp",
        "source_ref": "r1",
        "origin": "backfill",
        "created_at": at,
        "blob": {"sha256": "ab" * 32, "size": 10, "content_type": "application/pdf"},
        "delivery": {"mode": "print", "reason": "no consent", "email": None, "locale": "de"},
        "notifications": {"email": {"status": "skipped", "reason": "backfilled", "at": at}},
    }
    evidence = build_evidence(document, [], key_id="k", generated_at=at)
    assert evidence["ingestion"]["api_key"] == {"key_id": None, "note": NO_KEY_ID_BACKFILL}
    assert evidence["delivery"]["email_sha256"] is None
    assert evidence["notifications"]["email"]["attempts"] == 0
    assert evidence["portal"] == {"first_read_at": None, "first_downloaded_at": None}
    canonical_json(evidence)  # every field has a canonical form


def test_gone_message_says_when_and_why() -> None:
    tombstone = {
        "_id": "d1",
        "reason": "erased",
        "purged_at": dt.datetime(2026, 11, 30, 1, 2, 3, tzinfo=dt.UTC),
    }
    message = gone_message(tombstone)
    assert message == (
        "document d1 was deleted at 2026-11-30T01:02:03.000Z: its account was erased "
        "(reason: erased)"
    )
    assert Gone(message).status_code == 410
