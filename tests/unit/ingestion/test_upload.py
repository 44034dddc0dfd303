"""Content sniffing, file-name sanitising and the bounded spool."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mailbox_service.errors import PayloadTooLarge
from mailbox_service.ingestion.upload import (
    SPOOL_IN_MEMORY,
    FileReceiver,
    receive,
    receive_path,
    safe_filename,
    sniff,
)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n...", "application/pdf"),
        (b"\xef\xbb\xbf  junk %PDF-1.4", "application/pdf"),
        (b"MZ\x90\x00", "application/x-msdownload"),
        (b"\x7fELF\x02", "application/x-executable"),
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"PK\x03\x04", "application/zip"),
        (b"hello", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_sniff_trusts_bytes_not_names(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "document.pdf"),
        ("", "document.pdf"),
        ("invoice.pdf", "invoice.pdf"),
        ("../../x.pdf", "x.pdf"),
        ("a\\b\\c.pdf", "c.pdf"),
        ("...", "document.pdf"),
        ("a..b.pdf", "a_b.pdf"),
        ("Rechnung März.pdf", "Rechnung März.pdf"),
        ('q"uote;.pdf', "q_uote;.pdf"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name) == expected


def test_long_names_keep_their_extension() -> None:
    name = safe_filename("x" * 500 + ".pdf")
    assert len(name) <= 180
    assert name.endswith(".pdf")


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


async def test_receive_hashes_counts_and_sniffs() -> None:
    incoming = await receive(_chunks(b"%PDF-1.4\n", b"body"), "a.pdf", max_bytes=100)
    assert incoming.size == 13
    assert incoming.content_type == "application/pdf"
    assert incoming.sha256 == hashlib.sha256(b"%PDF-1.4\nbody").hexdigest()
    assert incoming.data.read() == b"%PDF-1.4\nbody"
    incoming.close()


async def test_receive_refuses_past_the_limit_without_holding_it() -> None:
    with pytest.raises(PayloadTooLarge) as info:
        await receive(_chunks(b"x" * 60, b"y" * 60), "a.pdf", max_bytes=100)
    assert info.value.field == "file"


def test_large_files_spool_to_disk() -> None:
    receiver = FileReceiver("big.pdf", max_bytes=10 * SPOOL_IN_MEMORY)
    for _ in range(3):
        receiver.feed(b"z" * SPOOL_IN_MEMORY)
    incoming = receiver.finish()
    assert incoming.data._rolled  # type: ignore[attr-defined]
    assert incoming.size == 3 * SPOOL_IN_MEMORY
    incoming.close()


def test_receive_path_uses_the_same_checks(tmp_path: Path) -> None:
    path = tmp_path / "in.pdf"
    path.write_bytes(b"%PDF-1.4 hi")
    incoming = receive_path(path, max_bytes=100)
    assert (incoming.filename, incoming.size, incoming.content_type) == (
        "in.pdf",
        11,
        "application/pdf",
    )
    with pytest.raises(PayloadTooLarge):
        receive_path(path, max_bytes=5)
