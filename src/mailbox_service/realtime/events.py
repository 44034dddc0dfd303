"""The events portal clients receive, and how one reaches the right room.

Every event goes to the room of the document's account (`account:<id>`), so it reaches each
connected user who may read that account, on whichever API node they are connected.
Payloads are small: a client that wants more asks `GET /v1/mailbox/documents/{id}`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import msgspec

from mailbox_service.storage.stored_document import decode_state

NAMESPACE = "/"
CHANNEL = "mailbox-socketio"
"""Redis pub/sub channel shared by the Socket.IO servers and every emitter."""


def room_for(account_id: str) -> str:
    return f"account:{account_id}"


class DocumentCreated(msgspec.Struct, frozen=True):
    """A new document arrived in one of the user's accounts."""

    event: ClassVar[str] = "document.created"

    id: str
    type: str
    account_id: str
    title: str
    summary: dict[str, Any]
    issued_at: dt.datetime


class DocumentUpdated(msgspec.Struct, frozen=True):
    """A document's read or archive state (possibly in another tab or device) or its business
    status (the sender's update) changed; every event carries the current state of all."""

    event: ClassVar[str] = "document.updated"

    id: str
    account_id: str
    read_at: dt.datetime | None
    archived: bool
    archived_at: dt.datetime | None
    first_downloaded_at: dt.datetime | None
    status: str | None = None
    status_at: dt.datetime | None = None


DocumentEvent = DocumentCreated | DocumentUpdated


class EventSource(Protocol):
    """A typed document the events are made from: StoredDocument, or DocumentState for a
    partial record (storage/stored_document.py)."""

    @property
    def id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    @property
    def issued_at(self) -> dt.datetime | None: ...
    @property
    def read_at(self) -> dt.datetime | None: ...
    @property
    def archived_at(self) -> dt.datetime | None: ...
    @property
    def first_downloaded_at(self) -> dt.datetime | None: ...
    @property
    def status(self) -> str | None: ...
    @property
    def status_at(self) -> dt.datetime | None: ...


def typed(doc: EventSource | Mapping[str, Any]) -> EventSource:
    """Callers that still hold a raw record (possibly a projection) get it decoded once."""
    return decode_state(doc) if isinstance(doc, Mapping) else doc


def created_event(doc: EventSource) -> DocumentCreated:
    """The `document.created` payload of a stored document."""
    if doc.issued_at is None:
        raise ValueError(f"document {doc.id} has no issued_at")
    return DocumentCreated(
        id=doc.id,
        type=doc.type,
        account_id=doc.account_id,
        title=doc.title or "",
        summary=doc.summary or {},
        issued_at=doc.issued_at,
    )


def updated_event(doc: EventSource) -> DocumentUpdated:
    """The `document.updated` payload of a stored document."""
    return DocumentUpdated(
        id=doc.id,
        account_id=doc.account_id,
        read_at=doc.read_at,
        archived=doc.archived_at is not None,
        archived_at=doc.archived_at,
        first_downloaded_at=doc.first_downloaded_at,
        status=doc.status,
        status_at=doc.status_at,
    )


class AsyncEmitTarget(Protocol):
    """What can send an event to a room: an AsyncServer, or a (write-only) client manager."""

    async def emit(
        self,
        event: str,
        data: Any = None,
        *,
        namespace: str | None = None,
        room: str | None = None,
        **kwargs: Any,
    ) -> Any: ...


def wire_data(event: DocumentEvent) -> dict[str, Any]:
    """JSON-ready payload: datetimes become ISO 8601 strings with `Z`."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    return data


async def emit_document_event(target: AsyncEmitTarget, event: DocumentEvent) -> None:
    """Send `event` to its account's room through `target`."""
    await target.emit(
        event.event, wire_data(event), namespace=NAMESPACE, room=room_for(event.account_id)
    )
