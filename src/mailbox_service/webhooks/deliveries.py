"""The `webhook_deliveries` store: one record per (event, endpoint), its state and its attempts.

    _id              "whmsg_" + 32 hex digits of SHA-256(event id, endpoint id): the same pair
                     always gives the same id, so a repeated dispatch inserts nothing new. It is
                     the `webhook-id` header, the same on every retry and resend: receivers
                     de-duplicate by it.
    event_id, endpoint_id, source, type
    body             the JSON sent, fixed at creation (a retry sends the same bytes)
    status           pending -> sending -> delivered | failed   (sending -> pending: a retry;
                     an operator's resend: anything but a live `sending` -> pending)
    attempts         attempts started since creation or the last resend
    next_at          pending: not before this time (backoff)
    claim, lease_until   sending: which job holds it, until when
    last_status_code, last_error, delivered_at, failed_at, updated_at, created_at
    log              the last LOG_SIZE attempts: {at, status_code, error, ms}

The stored side (claims, outcomes, resends: each one compare-and-set) is
storage/webhooks.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

import msgspec

from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.webhooks import Attempt

DELIVERY_PREFIX = "whmsg_"
DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "sending", "delivered", "failed")


def delivery_id(event_id: str, endpoint_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}\n{endpoint_id}".encode()).hexdigest()
    return DELIVERY_PREFIX + digest[:32]


def new_delivery(
    event_id: str, endpoint_id: str, source: str, type_: str, body: bytes, now: dt.datetime
) -> Doc:
    """A pending delivery, for a job to claim."""
    return {
        "_id": delivery_id(event_id, endpoint_id),
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "source": source,
        "type": type_,
        "body": body.decode(),
        "status": "pending",
        "attempts": 0,
        "next_at": now,
        "claim": None,
        "lease_until": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
        "log": [],
    }


class WebhookDelivery(msgspec.Struct, kw_only=True):
    """A delivery as operators see it (its body is the event; not repeated here)."""

    id: str
    """The `webhook-id` header of every attempt."""
    event_id: str
    endpoint_id: str
    type: str
    status: DeliveryStatus
    attempts: int
    next_at: dt.datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    delivered_at: dt.datetime | None = None
    log: list[Attempt] = msgspec.field(default_factory=list)
    """The last attempts, oldest first."""


def to_delivery(stored: Doc) -> WebhookDelivery:
    return WebhookDelivery(
        id=stored["_id"],
        event_id=stored["event_id"],
        endpoint_id=stored["endpoint_id"],
        type=stored["type"],
        status=stored["status"],
        attempts=int(stored.get("attempts") or 0),
        next_at=stored.get("next_at") if stored["status"] == "pending" else None,
        last_status_code=stored.get("last_status_code"),
        last_error=stored.get("last_error"),
        created_at=stored["created_at"],
        updated_at=stored["updated_at"],
        delivered_at=stored.get("delivered_at"),
        log=[msgspec.convert(entry, Attempt) for entry in stored.get("log") or []],
    )
