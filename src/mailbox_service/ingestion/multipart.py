"""Streaming multipart/form-data reader for `metadata` + `file`.

Litestar's own form parsing holds the whole body in memory; documents can be 50 MiB, so the
body is parsed chunk by chunk and the file part goes straight into a bounded spool. The framing
is bounded too (boundary length, parts, header bytes per part), so a hostile body costs time in
proportion to our limits, and breaking one is a 400 naming `multipart`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from mailbox_service.errors import BadRequest, PayloadTooLarge
from mailbox_service.ingestion.upload import FileReceiver, IncomingFile

MAX_BOUNDARY_CHARS = 70
"""RFC 2046, 5.1.1."""
MAX_PARTS = 8
"""`metadata`, `file`, and a few parts a client library may add; more is not an upload."""
MAX_PART_HEADER_BYTES = 8 * 1024
"""All header bytes of one part (Content-Disposition with a long filename fits easily)."""


def _framing_error(message: str) -> BadRequest:
    return BadRequest(f"malformed multipart body: {message}", field="multipart")


@dataclass
class ParsedUpload:
    metadata: bytes
    file: IncomingFile


class _Parts:
    """Callback target for the push parser; routes each part's bytes by its field name."""

    def __init__(self, max_file: int, max_metadata: int) -> None:
        self.max_file = max_file
        self.max_metadata = max_metadata
        self.metadata: bytearray | None = None
        self.receiver: FileReceiver | None = None
        self.file: IncomingFile | None = None
        self._current: str | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._parts = 0
        self._header_bytes = 0

    # header callbacks -----------------------------------------------------------------------
    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise _framing_error(f"more than {MAX_PARTS} parts")
        self._headers = {}
        self._header_bytes = 0
        self._current = None

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise _framing_error(f"a part's headers exceed {MAX_PART_HEADER_BYTES} bytes")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if not disposition:
            raise BadRequest("multipart part without Content-Disposition", field="multipart")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "metadata":
            if self.metadata is not None:
                raise BadRequest("the metadata part appears twice", field="metadata")
            self.metadata = bytearray()
        elif name == "file":
            if self.receiver is not None:
                raise BadRequest("the file part appears twice", field="file")
            filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
            self.receiver = FileReceiver(filename, self.max_file)
        else:
            name = "ignored"
        self._current = name

    # data callbacks -------------------------------------------------------------------------
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current == "metadata" and self.metadata is not None:
            self.metadata += data[start:end]
            if len(self.metadata) > self.max_metadata:
                raise PayloadTooLarge(
                    f"metadata is larger than {self.max_metadata} bytes", field="metadata"
                )
        elif self._current == "file" and self.receiver is not None:
            self.receiver.feed(data[start:end])

    def on_part_end(self) -> None:
        if self._current == "file" and self.receiver is not None:
            self.file = self.receiver.finish()
        self._current = None

    def abort(self) -> None:
        if self.receiver is not None:
            self.receiver.abort()


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        raise BadRequest("Content-Type must be multipart/form-data", field="Content-Type")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary", field="Content-Type")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise BadRequest(
            f"multipart boundary is longer than {MAX_BOUNDARY_CHARS} characters",
            field="Content-Type",
        )
    return boundary


async def read_upload(
    chunks: AsyncIterable[bytes], content_type: str, *, max_file: int, max_metadata: int
) -> ParsedUpload:
    parts = _Parts(max_file, max_metadata)
    parser = MultipartParser(
        boundary_of(content_type),
        callbacks={
            "on_part_begin": parts.on_part_begin,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
        },
    )
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:  # the base of every parse error python-multipart raises
        parts.abort()
        raise _framing_error(str(exc)[:200]) from None
    except BaseException:
        parts.abort()
        raise
    if parts.metadata is None:
        parts.abort()
        raise BadRequest("the metadata part is missing", field="metadata")
    if parts.file is None:
        parts.abort()
        raise BadRequest("the file part is missing (or the body was cut short)", field="file")
    return ParsedUpload(bytes(parts.metadata), parts.file)
