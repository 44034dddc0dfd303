"""Serving a document's file: byte ranges, conditional requests and safe headers.

The file comes from MinIO in chunks (BlobStore.stream), never whole in memory. Only a single
byte range is served (206); a multi-range request gets the whole file (200), which RFC 9110
allows and every PDF viewer copes with.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import quote

from mailbox_service.errors import DependencyUnavailable
from mailbox_service.log import get_logger
from mailbox_service.storage.blobs import BlobStore

log = get_logger(__name__)

Disposition = Literal["attachment", "inline"]
MAX_FILENAME_LENGTH = 150
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_UNSAFE_IN_QUOTES = re.compile(r"[^A-Za-z0-9 ._()+,-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


UNSATISFIABLE: Literal["unsatisfiable"] = "unsatisfiable"


def parse_range(header: str | None, size: int) -> ByteRange | Literal["unsatisfiable"] | None:
    """One byte range, `UNSATISFIABLE`, or None for "send everything".

    A header we do not understand (another unit, several ranges, bad syntax) is ignored, as
    RFC 9110 asks; only a well-formed range that lies outside the file is unsatisfiable.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(size - suffix, 0), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(end, size - 1), size)


def _opaque_tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def etag_for(sha256: str) -> str:
    return f'"{sha256}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: `W/"x"` matches `"x"`."""
    if not if_none_match:
        return False
    tags = _opaque_tags(if_none_match)
    return "*" in tags or etag in tags


def range_applies(if_range: str | None, etag: str) -> bool:
    """If-Range needs a strong match; a date (we send no Last-Modified) never matches."""
    return if_range is None or if_range.strip() == etag


def safe_filename(
    document_id: str, title: str, filename: str | None, content_type: str | None
) -> str:
    """A display name without paths, control characters or surprises, with a fitting suffix:
    the uploaded file's name, else the document's title."""
    raw = filename or title or f"document-{document_id}"
    name = unicodedata.normalize("NFC", str(raw))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name).replace('"', "'").strip().lstrip(".")
    name = re.sub(r"\s+", " ", name)[:MAX_FILENAME_LENGTH].strip()
    if not name:
        name = f"document-{document_id}"
    extension = mimetypes.guess_extension(content_type or "application/octet-stream") or ""
    if extension and not name.lower().endswith(extension):
        name += extension
    return name


def content_disposition(filename: str, disposition: Disposition = "attachment") -> str:
    """RFC 6266: an ASCII `filename` for old clients plus the exact UTF-8 `filename*`."""
    fallback = _UNSAFE_IN_QUOTES.sub("_", filename) or "document"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def open_blob(
    blobs: BlobStore, key: str, offset: int, length: int, *, version_id: str | None = None
) -> AsyncIterator[bytes]:
    """The blob's chunks, with the first one already fetched.

    Fetching it before the response starts turns an unreachable MinIO or a missing object
    into a clean 503 instead of a response cut off after its headers.
    """
    # BlobStore.stream is an async generator; closing it releases the MinIO connection.
    chunks = cast(
        AsyncGenerator[bytes, None],
        blobs.stream(key, offset=offset, length=length, version_id=version_id),
    )
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except Exception as exc:
        await chunks.aclose()
        log.error("blob.read_failed", key=key, error=f"{type(exc).__name__}: {exc}")
        raise DependencyUnavailable("the document's file is not available right now") from exc

    async def rest() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return rest()
