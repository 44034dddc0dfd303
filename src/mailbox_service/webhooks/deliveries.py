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

Every change is one `find_one_and_update` whose filter is the condition it needs (claimable;
still held by this claim; resendable), as in notifications/outbox.py: of two jobs racing for one
delivery one wins, and a job whose lease was taken over records nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, Literal

import msgspec
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from mailbox_service.clock import utcnow
from mailbox_service.errors import Conflict, NotFound
from mailbox_service.storage.mongo import Doc

DELIVERY_PREFIX = "whmsg_"
LOG_SIZE = 20
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


class Attempt(msgspec.Struct, kw_only=True):
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    ms: int


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


def claimable(now: dt.datetime) -> Doc:
    return {
        "$or": [
            {"status": "pending", "next_at": {"$lte": now}},
            {"status": "sending", "lease_until": {"$lt": now}},
        ]
    }


def lost(now: dt.datetime, grace: dt.timedelta) -> Doc:
    """Due for longer than the grace (its job should have run by now), or held by an expired
    lease (its worker died)."""
    return {
        "$or": [
            {"status": "pending", "next_at": {"$lt": now - grace}},
            {"status": "sending", "lease_until": {"$lt": now}},
        ]
    }


def resendable(now: dt.datetime) -> Doc:
    return {"$or": [{"status": {"$ne": "sending"}}, {"lease_until": {"$lt": now}}]}


def outcome_update(values: dict[str, Any], attempt: Attempt, now: dt.datetime) -> Doc:
    entry = msgspec.to_builtins(attempt, builtin_types=(dt.datetime,))
    return {
        "$set": {**values, "claim": None, "lease_until": None, "updated_at": now},
        "$push": {"log": {"$each": [entry], "$slice": -LOG_SIZE}},
    }


class BlockingDeliveries:
    """Sync: the worker's webhook threads and the sweep."""

    def __init__(self, deliveries: Collection[Doc]) -> None:
        self.deliveries = deliveries

    def insert(self, delivery: Doc) -> bool:
        """False when the delivery exists already (a repeated dispatch)."""
        try:
            self.deliveries.insert_one(delivery)
        except DuplicateKeyError:
            return False
        return True

    def claim(self, delivery_id_: str, lease: dt.timedelta) -> Doc | None:
        """The delivery, now `sending` under a new claim; None when it is not ours to send
        (delivered, failed, not due yet, or held by another job)."""
        now = utcnow()
        found: Doc | None = self.deliveries.find_one_and_update(
            {"_id": delivery_id_, **claimable(now)},
            {
                "$set": {
                    "status": "sending",
                    "claim": secrets.token_hex(8),
                    "lease_until": now + lease,
                    "updated_at": now,
                },
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return found

    def existing(self, ids: list[str]) -> set[str]:
        """Which of these deliveries are stored."""
        return {d["_id"] for d in self.deliveries.find({"_id": {"$in": ids}}, {"_id": 1})}

    def waiting_until(self, delivery_id_: str) -> dt.datetime | None:
        """`next_at` of a delivery that is pending but not due yet; None otherwise."""
        found = self.deliveries.find_one(
            {"_id": delivery_id_, "status": "pending", "next_at": {"$gt": utcnow()}},
            {"next_at": 1},
        )
        return None if found is None else found["next_at"]

    def finish(self, claimed: Doc, values: dict[str, Any], attempt: Attempt) -> bool:
        """Record an attempt's outcome; False when the claim was lost meanwhile."""
        result = self.deliveries.update_one(
            {"_id": claimed["_id"], "status": "sending", "claim": claimed["claim"]},
            outcome_update(values, attempt, utcnow()),
        )
        return result.modified_count == 1

    def find_lost(self, grace: dt.timedelta, limit: int) -> list[Doc]:
        found = self.deliveries.find(
            lost(utcnow(), grace), {"_id": 1, "attempts": 1, "status": 1}, limit=limit
        )
        return list(found)


class DeliveryStore:
    """Async: the admin API and the CLI."""

    def __init__(self, deliveries: AsyncCollection[Doc]) -> None:
        self.deliveries = deliveries

    async def page(
        self, *, endpoint_id: str | None, status: DeliveryStatus | None, limit: int
    ) -> list[WebhookDelivery]:
        """Newest first."""
        query: Doc = {}
        if endpoint_id is not None:
            query["endpoint_id"] = endpoint_id
        if status is not None:
            query["status"] = status
        cursor = self.deliveries.find(query, {"body": 0}).sort("created_at", DESCENDING)
        return [to_delivery(doc) for doc in await cursor.limit(limit).to_list()]

    async def get(self, delivery_id_: str) -> WebhookDelivery:
        found = await self.deliveries.find_one({"_id": delivery_id_}, {"body": 0})
        if found is None:
            raise NotFound(f"no webhook delivery {delivery_id_[:64]!r}", field="delivery_id")
        return to_delivery(found)

    async def resend(self, delivery_id_: str, by: str) -> WebhookDelivery:
        """Back to a fresh `pending` with the same id (and body); Conflict while an attempt is
        in progress, NotFound when there is no such delivery."""
        now = utcnow()
        after = await self.deliveries.find_one_and_update(
            {"_id": delivery_id_, **resendable(now)},
            {
                "$set": {
                    "status": "pending",
                    "attempts": 0,
                    "next_at": now,
                    "claim": None,
                    "lease_until": None,
                    "resent_at": now,
                    "resent_by": by,
                    "updated_at": now,
                }
            },
            projection={"body": 0},
            return_document=ReturnDocument.AFTER,
        )
        if after is None:
            await self.get(delivery_id_)  # NotFound, or it exists and is busy
            raise Conflict(
                "this delivery is being attempted right now; try again shortly",
                field="delivery_id",
            )
        return to_delivery(after)
