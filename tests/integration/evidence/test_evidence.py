"""Signed evidence on the real stack: a bundle signed by the service (`cryptography`) verifies
with another library (PyNaCl) and with openssl, a changed byte breaks it, a source sees only
its own documents, a purged document answers 410 with when and why, no key answers 503."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nacl.exceptions
import nacl.signing
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import (
    cli,
    ingested_id,
    invoice_metadata,
    post_document,
    sample_pdf,
    start_live_server,
    stop_process,
    unique,
)
from mailbox_service.asgi import create_app
from mailbox_service.auth.tokens import mint_token
from mailbox_service.clock import utcnow
from mailbox_service.evidence.bundle import NO_KEY_ID_API
from mailbox_service.evidence.keys import write_key_file
from mailbox_service.lifecycle.retention import RetentionPurge
from mailbox_service.settings import EvidenceSettings, Settings
from mailbox_service.storage.holds import HoldStore
from mailbox_service.wiring.services import Services
from notify_fixtures import WorkerProcess, eventually, wait_status


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _key_id(secret: str) -> str:
    return secret.split("_")[1]  # mbx_<key id>_<random>


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("evidence") / "evidence.pem"
    write_key_file(path)
    return path


@pytest.fixture(scope="module")
async def signing_client(
    settings: Settings, services: Services, key_file: Path
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with an evidence key configured."""
    configured = msgspec.structs.replace(
        settings, evidence=EvidenceSettings(key_file=str(key_file))
    )
    async with AsyncTestClient(app=create_app(configured), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def other_source_key(services: Services) -> str:
    _, secret = await services.api_keys.create(unique("other-sender"), ["ingest"])
    return secret


async def _public_key(client: AsyncTestClient[Any], key: str) -> nacl.signing.VerifyKey:
    response = await client.get("/v1/evidence/public-key", headers=_bearer(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["algorithm"] == "Ed25519"
    raw = base64.b64decode(body["public_key"])
    assert body["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    return nacl.signing.VerifyKey(raw)


async def _post(client: AsyncTestClient[Any], key: str, metadata: dict[str, Any]) -> str:
    """A document with a PDF of its own: evidence bundles carry the file's hash."""
    return await ingested_id(client, key, metadata, sample_pdf(metadata["source_ref"]))


async def test_bundle_verifies_with_another_library_and_one_changed_byte_breaks_it(
    signing_client: AsyncTestClient[Any],
    services: Services,
    settings: Settings,
    ingest_key: str,
    paperless_account: str,
    worker: WorkerProcess,
) -> None:
    metadata = invoice_metadata(paperless_account)
    pdf = sample_pdf(metadata["source_ref"])
    response = await post_document(signing_client, ingest_key, metadata, pdf)
    assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    await wait_status(services, document_id, "email", "sent")
    await wait_status(services, document_id, "realtime", "sent")

    # The customer reads and downloads it; an operator puts it on hold.
    token = mint_token(settings.auth, unique("sub"), [paperless_account], ttl_s=600)
    portal = _bearer(token)
    read = await signing_client.post(f"/v1/mailbox/documents/{document_id}/read", headers=portal)
    assert read.status_code == 200, read.text
    download = await signing_client.get(
        f"/v1/mailbox/documents/{document_id}/content", headers=portal
    )
    assert download.status_code == 200
    assert download.content == pdf
    await HoldStore(services.database).set_document(document_id, "court case 4711", "test")

    answer = await signing_client.get(
        f"/v1/documents/{document_id}/evidence", headers=_bearer(ingest_key)
    )
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    signed = base64.b64decode(bundle["signed"])
    signature = base64.b64decode(bundle["signature"])
    verify_key = await _public_key(signing_client, ingest_key)

    # PyNaCl (libsodium), not the `cryptography` (OpenSSL) that signed it.
    assert verify_key.verify(signed, signature) == signed
    # The readable copy is the signed statement; canonical JSON of it gives the bytes back.
    assert json.loads(signed) == bundle["evidence"]
    rebuilt = json.dumps(
        bundle["evidence"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert rebuilt == signed
    for position in (0, len(signed) // 2, len(signed) - 1):
        changed = bytearray(signed)
        changed[position] ^= 0x01
        with pytest.raises(nacl.exceptions.BadSignatureError):
            verify_key.verify(bytes(changed), signature)
    bad_signature = bytearray(signature)
    bad_signature[10] ^= 0x80
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_key.verify(signed, bytes(bad_signature))

    evidence = json.loads(signed)
    assert evidence["format"] == "mailbox-evidence/1"
    assert evidence["key_id"] == bundle["key_id"]
    assert evidence["document"]["id"] == document_id
    assert evidence["document"]["source"] == "test-ingest"
    assert evidence["file"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert evidence["file"]["size"] == len(pdf)
    assert evidence["ingestion"]["api_key"] == {"key_id": _key_id(ingest_key), "note": None}
    email = evidence["notifications"]["email"]
    assert email["status"] == "sent"
    assert email["attempts"] == 1
    assert email["relay_reply"].startswith("250"), email
    assert email["message_id"] == f"<{document_id}.notification@mailbox.invalid>"
    assert evidence["notifications"]["realtime"]["status"] == "sent"
    assert evidence["delivery"]["mode"] == "digital"
    assert (
        evidence["delivery"]["email_sha256"]
        == hashlib.sha256(f"{paperless_account}@example.org".encode()).hexdigest()
    )
    assert evidence["portal"]["first_read_at"].endswith("Z")
    assert evidence["portal"]["first_downloaded_at"].endswith("Z")
    assert [(h["scope"], h["reason"]) for h in evidence["holds"]] == [
        ("document", "court case 4711")
    ]
    generated = dt.datetime.fromisoformat(evidence["generated_at"])
    assert abs(generated - utcnow()) < dt.timedelta(minutes=1)

    # The operator's route gives the same statement about the document.
    admin = await signing_client.get(
        f"/v1/admin/documents/{document_id}/evidence",
        headers=_bearer((await services.api_keys.create("evidence-admin", ["admin"]))[1]),
    )
    assert admin.status_code == 200, admin.text
    admin_evidence = admin.json()["evidence"]
    assert {**admin_evidence, "generated_at": None} == {**evidence, "generated_at": None}

    # Each bundle issued is in the audit trail, with the key that asked for it.
    entries = await eventually(
        lambda: services.database.audit.find(
            {"action": "evidence.issued", "document_id": document_id}
        ).to_list(),
        lambda found: len(found) == 2,
        what="two evidence.issued entries",
    )
    assert {e["actor"]["key_id"] for e in entries} >= {_key_id(ingest_key)}
    assert {e["details"]["key_id"] for e in entries} == {bundle["key_id"]}
    assert {e["account_id"] for e in entries} == {paperless_account}


def _openssl_verify(directory: Path) -> subprocess.CompletedProcess[str]:
    command = [
        "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "evidence.pub",
        "-rawin", "-in", "signed.json", "-sigfile", "signature.bin",
    ]  # fmt: skip
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False)


async def test_openssl_verifies_a_bundle(
    signing_client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    tmp_path: Path,
) -> None:
    """The verification docs/api.md shows, with the openssl command line."""
    document_id = await _post(signing_client, ingest_key, invoice_metadata(paperless_account))
    bundle = (
        await signing_client.get(
            f"/v1/documents/{document_id}/evidence", headers=_bearer(ingest_key)
        )
    ).json()
    key = (await signing_client.get("/v1/evidence/public-key", headers=_bearer(ingest_key))).json()
    (tmp_path / "evidence.pub").write_text(key["public_key_pem"])
    (tmp_path / "signed.json").write_bytes(base64.b64decode(bundle["signed"]))
    (tmp_path / "signature.bin").write_bytes(base64.b64decode(bundle["signature"]))
    good = await anyio.to_thread.run_sync(_openssl_verify, tmp_path)
    assert good.returncode == 0, good
    assert "Signature Verified Successfully" in good.stdout
    changed = bytearray((tmp_path / "signed.json").read_bytes())
    changed[-2] ^= 0x01
    (tmp_path / "signed.json").write_bytes(bytes(changed))
    bad = await anyio.to_thread.run_sync(_openssl_verify, tmp_path)
    assert bad.returncode != 0, bad


async def test_a_source_sees_only_its_own_documents(
    signing_client: AsyncTestClient[Any],
    services: Services,
    ingest_key: str,
    other_source_key: str,
    admin_key: str,
    paperless_account: str,
) -> None:
    document_id = await _post(signing_client, ingest_key, invoice_metadata(paperless_account))
    other = await signing_client.get(
        f"/v1/documents/{document_id}/evidence", headers=_bearer(other_source_key)
    )
    assert other.status_code == 404, other.text
    assert other.json()["error"]["code"] == "not_found"
    # An admin key is not a sender: the sender route wants the ingest scope.
    admin_on_sender_route = await signing_client.get(
        f"/v1/documents/{document_id}/evidence", headers=_bearer(admin_key)
    )
    assert admin_on_sender_route.status_code == 403
    # And an ingest key may not use the operator's route.
    sender_on_admin_route = await signing_client.get(
        f"/v1/admin/documents/{document_id}/evidence", headers=_bearer(ingest_key)
    )
    assert sender_on_admin_route.status_code == 403
    unknown = await signing_client.get(
        f"/v1/documents/{unique('nope')}/evidence", headers=_bearer(ingest_key)
    )
    assert unknown.status_code == 404
    anonymous = await signing_client.get("/v1/evidence/public-key")
    assert anonymous.status_code == 401


async def test_a_document_stored_before_key_ids_says_so(
    signing_client: AsyncTestClient[Any],
    services: Services,
    ingest_key: str,
    paperless_account: str,
) -> None:
    document_id = await _post(signing_client, ingest_key, invoice_metadata(paperless_account))
    await services.database.documents.update_one(
        {"_id": document_id}, {"$unset": {"ingest_key_id": ""}}
    )
    bundle = (
        await signing_client.get(
            f"/v1/documents/{document_id}/evidence", headers=_bearer(ingest_key)
        )
    ).json()
    assert bundle["evidence"]["ingestion"]["api_key"] == {"key_id": None, "note": NO_KEY_ID_API}


async def test_a_purged_document_is_gone_with_when_and_why(
    signing_client: AsyncTestClient[Any],
    services: Services,
    ingest_key: str,
    other_source_key: str,
    admin_key: str,
    paperless_account: str,
) -> None:
    metadata = {
        "type": "shipment_document",
        "source_ref": unique("ref"),
        "account_id": paperless_account,
        "attributes": {"shipment_number": "SHP-1", "document_kind": "waybill"},
    }
    document_id = await _post(signing_client, ingest_key, metadata)
    expired = utcnow() - dt.timedelta(days=1)
    await services.database.documents.update_one(
        {"_id": document_id}, {"$set": {"retain_until": expired}}
    )
    report = await RetentionPurge(services.database, services.blobs, services.registry).run(
        utcnow()
    )
    assert report.purged["shipment_document"] >= 1
    assert await services.documents.record(document_id) is None
    tombstone = await services.database.tombstones.find_one({"_id": document_id})
    assert tombstone is not None

    gone = await signing_client.get(
        f"/v1/documents/{document_id}/evidence", headers=_bearer(ingest_key)
    )
    assert gone.status_code == 410, gone.text
    error = gone.json()["error"]
    assert error["code"] == "gone"
    purged_at = tombstone["purged_at"].replace(tzinfo=dt.UTC)
    assert purged_at.strftime("%Y-%m-%dT%H:%M:%S") in error["message"]
    assert "retention period ended" in error["message"]
    assert "(reason: retention)" in error["message"]
    admin = await signing_client.get(
        f"/v1/admin/documents/{document_id}/evidence", headers=_bearer(admin_key)
    )
    assert admin.status_code == 410
    # Another source does not learn that the document ever existed.
    other = await signing_client.get(
        f"/v1/documents/{document_id}/evidence", headers=_bearer(other_source_key)
    )
    assert other.status_code == 404


async def test_without_a_key_the_routes_answer_503_naming_the_setting(
    settings: Settings, services: Services, ingest_key: str, paperless_account: str
) -> None:
    unconfigured = msgspec.structs.replace(settings, evidence=EvidenceSettings(key_file=""))
    async with AsyncTestClient(app=create_app(unconfigured), timeout=30) as client:
        document_id = await _post(client, ingest_key, invoice_metadata(paperless_account))
        for path in (f"/v1/documents/{document_id}/evidence", "/v1/evidence/public-key"):
            answer = await client.get(path, headers=_bearer(ingest_key))
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "not_configured"
            assert "MAILBOX_EVIDENCE_KEY_FILE" in answer.json()["error"]["message"]


def test_start_up_warns_without_a_key_and_refuses_a_broken_one(
    test_env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    server = start_live_server(tmp_path, {"MAILBOX_EVIDENCE_KEY_FILE": ""})
    try:
        assert server.log.read_text().count("evidence.key_missing") == 1
    finally:
        stop_process(server.process)

    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"not a key")
    serve = cli("serve", "--port", "1", env={"MAILBOX_EVIDENCE_KEY_FILE": str(broken)}, check=False)
    assert serve.returncode == 2
    assert serve.stderr.strip().splitlines() == [
        f"error: MAILBOX_EVIDENCE_KEY_FILE ({broken}): expected a PEM Ed25519 private key or "
        "exactly 32 raw bytes (got 9 bytes); make one with `mailbox-service evidence keygen PATH`"
    ]
