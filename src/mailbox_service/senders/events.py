"""Sender events: one record per thing that happened to a document that its sender may learn.

Every part of the service that changes what a sender cares about (the worker's email outcome,
the portal's first read or download, a bounce, a status update, the print fallback) records an
event here, in the `sender_events` collection, right after the change it describes. Two readers
consume them:
  - the change feed (`GET /v1/documents/changes`), per source in `_id` order;
  - the webhook dispatcher, which fans each event out to the source's endpoints
    (`dispatched` is False until it has; its sweep picks up events whose dispatch job was lost).

The event never says who acted: a sender learns that the document was read, not by whom.

Ordering: `_id` is an ObjectId, ascending in time per second across processes; within one
second two processes' ids are not in time order. Readers that page by `_id` therefore only
return events older than a settle delay (events.SETTLE), by which time every event of those
seconds is written - unless its insert took longer than the delay (the id is made before the
insert; a failover can hold an insert for seconds): such an event reaches webhooks but can land
behind a feed cursor already past it. A crash between a change and its event loses the event
(the document still shows the change in the status API); the worker records its own outcomes
right after the outbox write, so that window is one round trip.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from bson import ObjectId

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Doc

EventType = Literal[
    "document.delivered",
    "document.delivery_failed",
    "document.print_required",
    "document.read",
    "document.downloaded",
    "document.status_changed",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "document.delivered",
    "document.delivery_failed",
    "document.print_required",
    "document.read",
    "document.downloaded",
    "document.status_changed",
)
EVENT_DESCRIPTIONS: dict[EventType, str] = {
    "document.delivered": "The email notification was accepted by the relay.",
    "document.delivery_failed": "The email notification failed for good (relay refusal, bounce, "
    "or retries exhausted).",
    "document.print_required": "The document must go out on paper after all; `data.reason` "
    "says why.",
    "document.read": "The customer opened the document for the first time.",
    "document.downloaded": "The customer downloaded the file for the first time.",
    "document.status_changed": "The document's business status changed (a sender's PATCH).",
}

EVENT_ID_PREFIX = "evt_"
SETTLE = dt.timedelta(seconds=2)
"""Readers paging by `_id` stop at events older than this (see the module docstring)."""

WEBHOOK_QUEUE = "webhooks"
"""dramatiq queue of webhook jobs: its own, so a slow receiver never delays email or events."""
DISPATCH_ACTOR = "dispatch_webhooks"
"""The job that fans one event out to the source's endpoints; takes the event id."""


class SenderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as senders see it (webhook body, change feed item)."""

    id: str
    """`evt_` + 24 hex digits; stable: a re-sent webhook carries the same id."""
    type: EventType
    occurred_at: dt.datetime
    document_id: str
    source_ref: str
    document_type: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    """Event-specific facts (e.g. `reason`, `status`); never who acted."""


def event_id(object_id: ObjectId) -> str:
    return f"{EVENT_ID_PREFIX}{object_id}"


def object_id_of(event_id_text: str) -> ObjectId | None:
    """The stored `_id` of an event id, or None when the text is not one."""
    raw = event_id_text.removeprefix(EVENT_ID_PREFIX)
    if len(raw) != 24 or not ObjectId.is_valid(raw):
        return None
    return ObjectId(raw)


def new_event(
    document: Mapping[str, Any],
    type_: EventType,
    data: Mapping[str, Any] | None = None,
    *,
    at: dt.datetime | None = None,
) -> Doc:
    """The stored form of an event about `document` (a stored document; needs `_id`, `source`,
    `source_ref` and `type`)."""
    return {
        "_id": ObjectId(),
        "type": type_,
        "occurred_at": at or utcnow(),
        "document_id": str(document["_id"]),
        "source": document["source"],
        "source_ref": document["source_ref"],
        "document_type": document["type"],
        "data": dict(data or {}),
        "dispatched": False,
    }


def to_event(stored: Mapping[str, Any]) -> SenderEvent:
    return SenderEvent(
        id=event_id(stored["_id"]),
        type=stored["type"],
        occurred_at=stored["occurred_at"],
        document_id=stored["document_id"],
        source_ref=stored["source_ref"],
        document_type=stored["document_type"],
        data=dict(stored.get("data") or {}),
    )
