"""Request and response bodies of `POST /v1/documents` (also the backfill manifest's lines)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import msgspec

from mailbox_service.errors import BadRequest, InvalidMetadata

# No whitespace (CR/LF above all), quotes, brackets or separators: what survives this can go
# into an email header without escaping and cannot inject another header.
Email = Annotated[
    str,
    msgspec.Meta(
        max_length=254,
        pattern=r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$",
        description="Email address",
    ),
]
Locale = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", examples=["de", "en-GB"])]
AccountId = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
SourceRef = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="The sender's own unique reference (printable ASCII, no spaces)",
    ),
]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Recipient(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: Email | None = None
    name: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    locale: Locale | None = None


class DocumentMetadata(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `metadata` part: what the sender says about the document."""

    type: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    source_ref: SourceRef
    account_id: AccountId
    attributes: dict[str, Any]
    recipient: Recipient | None = None
    title: Title | None = None
    issued_at: Annotated[dt.datetime, msgspec.Meta(tz=True)] | None = None
    notify: bool = True


Delivery = Literal["digital", "print"]


class IngestResponse(msgspec.Struct, frozen=True):
    id: str
    type: str
    account_id: str
    source_ref: str
    sha256: str
    size: int
    content_type: str
    created_at: dt.datetime
    delivery: Delivery
    reason: str | None = None


_AT = re.compile(r"\s*-\s*at\s*`\$\.?([^`]*)`\s*$")


def error_field(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """Split msgspec's "Expected `int` - at `$.a.b`" into ("a.b", "Expected `int`").

    A missing field is reported by msgspec at its parent; name the field itself instead.
    """
    text = str(exc)
    match = _AT.search(text)
    path = match.group(1) if match else ""
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    message = _AT.sub("", text)
    missing = None
    if message.startswith("Object missing required field") and "`" in message:
        missing = message.split("`")[1]
        message = "field is required"
    full = ".".join(p for p in (prefix, path, missing) if p)
    return full, message


def decode_metadata(raw: bytes) -> DocumentMetadata:
    """Parse the `metadata` part: broken JSON is 400, a wrong field 422 naming the field."""
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"metadata is not valid JSON: {exc}", field="metadata") from None
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object", field="metadata")
    return convert_metadata(value)


def convert_metadata(value: dict[str, Any]) -> DocumentMetadata:
    try:
        return msgspec.convert(value, DocumentMetadata, strict=True)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc)
        raise InvalidMetadata(f"{field or 'metadata'}: {message}", field=field or None) from None
