"""Request and response bodies of `POST /v1/documents` (also the backfill manifest's lines)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from mailbox_service.errors import InvalidMetadata
from mailbox_service.types import AccountId, Email, Locale, error_field
from mailbox_service.untrusted import decode_json_object

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


def decode_metadata(raw: bytes, *, max_bytes: int = 256 * 1024) -> DocumentMetadata:
    """Parse the `metadata` part: broken or too deep JSON is 400, a wrong field 422 naming it."""
    return convert_metadata(decode_json_object(raw, "metadata", max_bytes=max_bytes))


def convert_metadata(value: dict[str, Any]) -> DocumentMetadata:
    try:
        return msgspec.convert(value, DocumentMetadata, strict=True)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc)
        raise InvalidMetadata(f"{field or 'metadata'}: {message}", field=field or None) from None


class DocumentTypeInfo(msgspec.Struct, frozen=True):
    """A registered document type, as `GET /v1/document-types` lists it."""

    name: str
    label: str
    digital: bool
    retention_days: int
    content_types: list[str]
    attributes_schema: dict[str, Any]
    """JSON Schema of `metadata.attributes` for this type."""
    statuses: list[str] = msgspec.field(default_factory=list)
    """Business statuses a sender may set (`PATCH /v1/documents/{id}`); empty: none."""
    initial_status: str | None = None
    """The status a new document of this type starts with."""


class DocumentTypeList(msgspec.Struct, frozen=True):
    items: list[DocumentTypeInfo]
