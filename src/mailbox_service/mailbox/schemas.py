"""Response and request bodies of the portal API (`/v1/mailbox/...`).

Only what a customer may see leaves the service: never the fingerprint, blob key, source,
source_ref, delivery decision or notification state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from mailbox_service.storage.mongo import Doc
from mailbox_service.types import Email, Locale


class DocumentItem(msgspec.Struct, frozen=True):
    """One entry of the inbox list."""

    id: str
    type: str
    account_id: str
    title: str
    summary: dict[str, Any]
    issued_at: dt.datetime
    read_at: dt.datetime | None
    archived: bool
    size: int
    content_type: str
    status: str | None = None
    """Business status set by the sender (an invoice's `paid`); null: the type has none."""
    status_at: dt.datetime | None = None


class DocumentPage(msgspec.Struct, frozen=True):
    """A page of the list; pass `next_cursor` back as `cursor` for the next one (null: done)."""

    items: list[DocumentItem]
    next_cursor: str | None


class DocumentDetail(msgspec.Struct, frozen=True):
    """Everything about one document a customer may see."""

    id: str
    type: str
    account_id: str
    title: str
    summary: dict[str, Any]
    attributes: dict[str, Any]
    issued_at: dt.datetime
    created_at: dt.datetime
    read_at: dt.datetime | None
    first_read_at: dt.datetime | None
    archived: bool
    archived_at: dt.datetime | None
    first_downloaded_at: dt.datetime | None
    retain_until: dt.datetime | None
    size: int
    content_type: str
    filename: str | None
    sha256: str
    status: str | None = None
    """Business status set by the sender (an invoice's `paid`); null: the type has none."""
    status_at: dt.datetime | None = None


class UnreadCount(msgspec.Struct, frozen=True):
    """Unread, non-archived documents: in total, per account of the caller, per type."""

    total: int
    by_account: dict[str, int]
    by_type: dict[str, int]


class Preferences(msgspec.Struct, frozen=True):
    """An account's delivery preferences as the portal shows them."""

    account_id: str
    paperless: bool
    email: str | None
    locale: str | None
    paperless_changed_at: dt.datetime | None
    updated_at: dt.datetime | None


class PreferencesUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PUT` body: fields left out stay as they are; `null` clears email or locale."""

    paperless: bool | msgspec.UnsetType = msgspec.UNSET
    email: Email | msgspec.UnsetType | None = msgspec.UNSET
    locale: Locale | msgspec.UnsetType | None = msgspec.UNSET


# Only these fields are read for list items; a projection keeps big attributes off the wire.
ITEM_PROJECTION: dict[str, int] = {
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


def item_from(doc: Doc) -> DocumentItem:
    blob = doc.get("blob") or {}
    return DocumentItem(
        id=doc["_id"],
        type=doc["type"],
        account_id=doc["account_id"],
        title=doc.get("title") or "",
        summary=doc.get("summary") or {},
        issued_at=doc["issued_at"],
        read_at=doc.get("read_at"),
        archived=doc.get("archived_at") is not None,
        size=int(blob.get("size") or 0),
        content_type=blob.get("content_type") or "application/octet-stream",
        status=doc.get("status"),
        status_at=doc.get("status_at"),
    )


def detail_from(doc: Doc) -> DocumentDetail:
    blob = doc.get("blob") or {}
    return DocumentDetail(
        id=doc["_id"],
        type=doc["type"],
        account_id=doc["account_id"],
        title=doc.get("title") or "",
        summary=doc.get("summary") or {},
        attributes=doc.get("attributes") or {},
        issued_at=doc["issued_at"],
        created_at=doc["created_at"],
        read_at=doc.get("read_at"),
        first_read_at=doc.get("first_read_at"),
        archived=doc.get("archived_at") is not None,
        archived_at=doc.get("archived_at"),
        first_downloaded_at=doc.get("first_downloaded_at"),
        retain_until=doc.get("retain_until"),
        size=int(blob.get("size") or 0),
        content_type=blob.get("content_type") or "application/octet-stream",
        filename=blob.get("filename"),
        sha256=blob.get("sha256") or "",
        status=doc.get("status"),
        status_at=doc.get("status_at"),
    )
