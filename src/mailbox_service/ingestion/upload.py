"""An incoming file: spooled (memory, then disk), hashed and sniffed while it streams in.

Memory use is bounded by the spool threshold whatever the file's size, and the size limit is
enforced while reading, so an oversized upload is refused without being held.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mailbox_service.errors import PayloadTooLarge

SPOOL_IN_MEMORY = 1024 * 1024
SNIFF_BYTES = 1024

# (magic prefix, offset, content type); first match wins. Only what we accept or want to name
# in an error message: the sniffed type is never taken from the file name or the sender.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"PK\x03\x04", "application/zip"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"#!", "text/x-script"),
)


def sniff(head: bytes) -> str:
    """The content type the bytes say they are; PDF may start anywhere in the first 1 KiB."""
    for magic, content_type in _SIGNATURES:
        if head.startswith(magic):
            return content_type
    if b"%PDF-" in head[:SNIFF_BYTES]:
        return "application/pdf"
    return "application/octet-stream"


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str | None, default: str = "document.pdf") -> str:
    """A file name that is safe in a path, a header and a download dialog."""
    if not name:
        return default
    name = unicodedata.normalize("NFC", name)
    # Keep only the last path segment, whichever separator the sender's OS used.
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = name.replace("..", "_")
    if not name:
        return default
    if len(name) > 180:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 180 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:180]
    return name


@dataclass
class IncomingFile:
    """A fully received file: where its bytes are and what we learnt about them."""

    data: IO[bytes]
    filename: str
    size: int = 0
    sha256: str = ""
    content_type: str = "application/octet-stream"
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self.data.close()
            self._closed = True


class FileReceiver:
    """Accumulates chunks into a spool while hashing, counting and sniffing."""

    def __init__(self, filename: str | None, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.filename = safe_filename(filename)

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.spool.close()
            raise PayloadTooLarge(
                f"file is larger than the maximum of {self.max_bytes} bytes", field="file"
            )
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self.hash.update(chunk)
        self.spool.write(chunk)

    def finish(self) -> IncomingFile:
        self.spool.seek(0)
        return IncomingFile(
            data=self.spool,
            filename=self.filename,
            size=self.size,
            sha256=self.hash.hexdigest(),
            content_type=sniff(self.head),
        )

    def abort(self) -> None:
        self.spool.close()


async def receive(
    chunks: AsyncIterable[bytes], filename: str | None, max_bytes: int
) -> IncomingFile:
    receiver = FileReceiver(filename, max_bytes)
    try:
        async for chunk in chunks:
            receiver.feed(chunk)
    except BaseException:
        receiver.abort()
        raise
    return receiver.finish()


def receive_path(path: Path, max_bytes: int, filename: str | None = None) -> IncomingFile:
    """Blocking: read a file from disk (the backfill's door) through the same checks."""
    receiver = FileReceiver(filename or path.name, max_bytes)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(256 * 1024):
                receiver.feed(chunk)
    except BaseException:
        receiver.abort()
        raise
    return receiver.finish()
