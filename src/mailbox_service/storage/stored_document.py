"""StoredDocument: the typed form of one record of the `documents` collection.

Only storage/ turns records into this type and back: `decode_document` once per record read,
`encode_document` once per insert. Services and views work with attributes, never with string
keys of a raw record.

What each part owns:
- `attributes` (and `summary`) stay plain dicts: document types are schemaless to the store,
  and `doctypes/` validates them on the way in.
- `notifications` is the per-channel outbox state; the outbox module owns its shape, so here
  it stays loosely typed.
- `reminder` and `hold` are written by senders/ and lifecycle/ with their own updates; they
  stay loose too.

Fields written by later updates (a hold, a print fallback's `delivery.changes`) have defaults,
so records written before a field existed still decode. Unknown fields are ignored on decode:
the type is a read model, and inserts only ever write documents built from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from mailbox_service.storage.mongo import Doc

DeliveryMode = Literal["digital", "print"]


class Blob(msgspec.Struct, frozen=True):
    """Where the file is in MinIO and what it is."""

    key: str
    size: int = 0
    sha256: str = ""
    content_type: str = "application/octet-stream"
    filename: str | None = None
    version_id: str | None = None
    """The S3 version, on buckets with object locking (the purge deletes exactly it)."""


class Delivery(msgspec.Struct, frozen=True):
    """Digital or print, why, and where the email goes; changes appended by the print
    fallback (senders/print_fallback.py)."""

    mode: DeliveryMode
    reason: str | None = None
    email: str | None = None
    locale: str | None = None
    print_required_at: dt.datetime | None = None
    changes: list[dict[str, Any]] = msgspec.field(default_factory=list)


class StoredDocument(msgspec.Struct, frozen=True):
    """One document as stored. `id` is the record's `_id`."""

    id: str = msgspec.field(name="_id")
    type: str
    account_id: str
    issued_at: dt.datetime
    created_at: dt.datetime
    blob: Blob
    delivery: Delivery
    source: str = ""
    source_ref: str = ""
    source_key: str | None = None
    """The unique idempotency key of (source, source_ref) (storage/documents.py)."""
    ingest_key_id: str | None = None
    title: str = ""
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    summary: dict[str, Any] = msgspec.field(default_factory=dict)
    recipient: dict[str, Any] | None = None
    origin: str = "api"
    fingerprint: str | None = None
    # Reading and archiving: the customer's state.
    read_at: dt.datetime | None = None
    first_read_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    first_downloaded_at: dt.datetime | None = None
    # Business status, set by the sender (an invoice's `paid`).
    status: str | None = None
    status_at: dt.datetime | None = None
    notifications: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    """Outbox state per channel; its shape belongs to the outbox module."""
    reminder: dict[str, Any] | None = None
    # Lifecycle: how long it is kept and what keeps it longer.
    retain_until: dt.datetime | None = None
    hold: dict[str, Any] | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def event_subject(self) -> Doc:
        """The fields a sender event names its document by (senders/events.py)."""
        return {
            "_id": self.id,
            "source": self.source,
            "source_ref": self.source_ref,
            "type": self.type,
        }


class DocumentState(msgspec.Struct, frozen=True):
    """What the portal's real-time events carry of a document, from a record that may be a
    projection (the outbox claim, a status update's answer): only `_id` and `account_id` are
    required. StoredDocument has the same attributes."""

    id: str = msgspec.field(name="_id")
    account_id: str
    type: str = ""
    title: str = ""
    summary: dict[str, Any] = msgspec.field(default_factory=dict)
    issued_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    first_downloaded_at: dt.datetime | None = None
    status: str | None = None
    status_at: dt.datetime | None = None


class ListedBlob(msgspec.Struct, frozen=True):
    size: int = 0
    content_type: str = "application/octet-stream"


class ListedDocument(msgspec.Struct, frozen=True):
    """The fields of a document the inbox list reads (`LISTED_FIELDS`): a projection keeps big
    attributes off the wire, so the list never decodes a whole StoredDocument."""

    id: str = msgspec.field(name="_id")
    type: str
    account_id: str
    issued_at: dt.datetime
    title: str = ""
    summary: dict[str, Any] = msgspec.field(default_factory=dict)
    read_at: dt.datetime | None = None
    archived_at: dt.datetime | None = None
    blob: ListedBlob | None = None
    status: str | None = None
    status_at: dt.datetime | None = None


LISTED_FIELDS: dict[str, int] = {
    "type": 1,
    "account_id": 1,
    "title": 1,
    "summary": 1,
    "issued_at": 1,
    "read_at": 1,
    "archived_at": 1,
    "blob.size": 1,
    "blob.content_type": 1,
    "status": 1,
    "status_at": 1,
}
"""The projection of an inbox list page: exactly what ListedDocument holds."""

# Datetimes stay datetime objects (BSON dates), not ISO strings.
_NATIVE = (dt.datetime,)


def decode_document(record: Doc) -> StoredDocument:
    """A record read from `documents`, typed. Called once per record a read returns."""
    return msgspec.convert(record, StoredDocument, from_attributes=False)


def decode_listed(record: Doc) -> ListedDocument:
    return msgspec.convert(record, ListedDocument, from_attributes=False)


def decode_state(record: Mapping[str, Any]) -> DocumentState:
    return msgspec.convert(record, DocumentState, from_attributes=False)


_LATER_FIELDS = ("first_read_at", "hold")
_LATER_BLOB_FIELDS = ("version_id",)
_LATER_DELIVERY_FIELDS = ("print_required_at", "changes")


def encode_document(document: StoredDocument) -> Doc:
    """The record an insert writes: the customer-state fields as explicit nulls, as always
    (`read_at: null` ...). Fields that later updates add are left out while unset: `$min` on
    `first_read_at` must meet no field rather than a null (null sorts below every date), and
    a record without a hold, a blob version or a delivery change has always lacked them."""
    record: Doc = msgspec.to_builtins(document, builtin_types=_NATIVE)
    _drop_empty(record, _LATER_FIELDS)
    _drop_empty(record["blob"], _LATER_BLOB_FIELDS)
    _drop_empty(record["delivery"], _LATER_DELIVERY_FIELDS)
    return record


def _drop_empty(record: Doc, names: tuple[str, ...]) -> None:
    for name in names:
        if not record.get(name):
            record.pop(name, None)
