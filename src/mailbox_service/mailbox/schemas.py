"""Response and request bodies of the portal API (`/v1/mailbox/...`).

Only what a customer may see leaves the service: never the fingerprint, blob key, source,
source_ref, delivery decision or notification state.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from mailbox_service.storage.stored_document import ListedDocument, StoredDocument
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


def item_from(doc: ListedDocument) -> DocumentItem:
    """The list entry of a listed document (the list reads only LISTED_FIELDS)."""
    blob = doc.blob
    return DocumentItem(
        id=doc.id,
        type=doc.type,
        account_id=doc.account_id,
        title=doc.title or "",
        summary=doc.summary or {},
        issued_at=doc.issued_at,
        read_at=doc.read_at,
        archived=doc.archived_at is not None,
        size=blob.size if blob else 0,
        content_type=(blob.content_type if blob else "") or "application/octet-stream",
        status=doc.status,
        status_at=doc.status_at,
    )


def detail_from(doc: StoredDocument) -> DocumentDetail:
    """Everything a customer may see of a stored document."""
    blob = doc.blob
    return DocumentDetail(
        id=doc.id,
        type=doc.type,
        account_id=doc.account_id,
        title=doc.title or "",
        summary=doc.summary or {},
        attributes=doc.attributes or {},
        issued_at=doc.issued_at,
        created_at=doc.created_at,
        read_at=doc.read_at,
        first_read_at=doc.first_read_at,
        archived=doc.archived,
        archived_at=doc.archived_at,
        first_downloaded_at=doc.first_downloaded_at,
        retain_until=doc.retain_until,
        size=blob.size,
        content_type=blob.content_type or "application/octet-stream",
        filename=blob.filename,
        sha256=blob.sha256,
        status=doc.status,
        status_at=doc.status_at,
    )
