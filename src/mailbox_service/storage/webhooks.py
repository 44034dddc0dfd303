"""The `webhook_endpoints` and `webhook_deliveries` collections.

What the fields mean: webhooks/endpoints.py and webhooks/deliveries.py. Every change is one
`find_one_and_update` (or `update_one`) whose filter is the condition it needs (claimable;
still held by this claim; resendable; still active), as in the notification outbox: of two jobs
racing for one delivery one wins, and a job whose lease was taken over records nothing.
The async stores serve the admin API and the CLI, the blocking ones the worker's webhook
threads and sweep; the filters and updates both use are built once, below.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

import msgspec
from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections, Doc

ENDPOINTS = "webhook_endpoints"
DELIVERIES = "webhook_deliveries"
ALL_EVENTS = "*"
"""An endpoint's subscription to every event type."""
LOG_SIZE = 20
"""Attempts kept on a delivery, the newest last."""
NO_SECRET = {"secret": 0}
NO_BODY = {"body": 0}


class Attempt(msgspec.Struct, kw_only=True):
    """One attempt as kept in a delivery's `log`."""

    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    ms: int


def log_entry(attempt: Attempt) -> Doc:
    return msgspec.to_builtins(attempt, builtin_types=(dt.datetime,))  # type: ignore[no-any-return]


# -- endpoints -----------------------------------------------------------------------------


def subscribed(source: str, event_type: str) -> Doc:
    """Filter: the source's active endpoints that take events of this type."""
    return {"source": source, "state": "active", "events": {"$in": [event_type, ALL_EVENTS]}}


def disabling(reason: str, now: dt.datetime) -> Doc:
    return {"$set": {"state": "disabled", "disabled_reason": reason, "disabled_at": now}}


class WebhookEndpointStore:
    """Async: the admin API and the CLI."""

    def __init__(self, collections: Collections) -> None:
        self._endpoints = collections.webhook_endpoints

    async def insert(self, endpoint: Doc) -> None:
        await self._endpoints.insert_one(endpoint)

    async def all(self, source: str | None = None) -> list[Doc]:
        """Every endpoint (of `source`), by id, without secrets."""
        query: Doc = {} if source is None else {"source": source}
        return await self._endpoints.find(query, NO_SECRET).sort("_id", 1).to_list()

    async def get(self, endpoint_id: str) -> Doc | None:
        """With its secret."""
        return await self._endpoints.find_one({"_id": endpoint_id})

    async def disable(self, endpoint_id: str, reason: str) -> Doc | None:
        """The endpoint, now disabled with `reason` (without its secret); None when it was
        not active (or does not exist)."""
        return await self._endpoints.find_one_and_update(
            {"_id": endpoint_id, "state": "active"},
            disabling(reason, utcnow()),
            projection=NO_SECRET,
            return_document=ReturnDocument.AFTER,
        )


class BlockingWebhookEndpointStore:
    """Sync: the worker's webhook threads."""

    def __init__(self, db: Database[Doc]) -> None:
        self._endpoints = db[ENDPOINTS]

    def subscribed(self, source: str, event_type: str) -> list[Doc]:
        """Whole endpoints (with url and secret): the dispatch attempts the first itself."""
        return list(self._endpoints.find(subscribed(source, event_type)))

    def get(self, endpoint_id: str) -> Doc | None:
        found: Doc | None = self._endpoints.find_one({"_id": endpoint_id})
        return found

    def disable(self, endpoint_id: str, reason: str) -> bool:
        """True when this call disabled it (it was active)."""
        result = self._endpoints.update_one(
            {"_id": endpoint_id, "state": "active"}, disabling(reason, utcnow())
        )
        return result.modified_count == 1


# -- deliveries ----------------------------------------------------------------------------


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
    return {
        "$set": {**values, "claim": None, "lease_until": None, "updated_at": now},
        "$push": {"log": {"$each": [log_entry(attempt)], "$slice": -LOG_SIZE}},
    }


class WebhookDeliveryStore:
    """Async: the admin API and the CLI. Reads leave out the body (the event, not repeated)."""

    def __init__(self, collections: Collections) -> None:
        self._deliveries = collections.webhook_deliveries

    async def page(self, *, endpoint_id: str | None, status: str | None, limit: int) -> list[Doc]:
        """Newest first."""
        query: Doc = {}
        if endpoint_id is not None:
            query["endpoint_id"] = endpoint_id
        if status is not None:
            query["status"] = status
        cursor = self._deliveries.find(query, NO_BODY).sort("created_at", DESCENDING)
        return await cursor.limit(limit).to_list()

    async def get(self, delivery_id: str) -> Doc | None:
        return await self._deliveries.find_one({"_id": delivery_id}, NO_BODY)

    async def resend(self, delivery_id: str, by: str) -> Doc | None:
        """Back to a fresh `pending` with the same id (and body); None when there is no such
        delivery or an attempt holds it."""
        now = utcnow()
        return await self._deliveries.find_one_and_update(
            {"_id": delivery_id, **resendable(now)},
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
            projection=NO_BODY,
            return_document=ReturnDocument.AFTER,
        )


class BlockingWebhookDeliveryStore:
    """Sync: the worker's webhook threads and the sweep."""

    def __init__(self, db: Database[Doc]) -> None:
        self._deliveries = db[DELIVERIES]

    def insert(self, delivery: Doc) -> bool:
        """False when the delivery exists already (a repeated dispatch)."""
        try:
            self._deliveries.insert_one(delivery)
        except DuplicateKeyError:
            return False
        return True

    def claim(self, delivery_id: str, lease: dt.timedelta) -> Doc | None:
        """The delivery, now `sending` under a new claim; None when it is not ours to send
        (delivered, failed, not due yet, or held by another job)."""
        now = utcnow()
        found: Doc | None = self._deliveries.find_one_and_update(
            {"_id": delivery_id, **claimable(now)},
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

    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of these deliveries are stored."""
        return {d["_id"] for d in self._deliveries.find({"_id": {"$in": list(ids)}}, {"_id": 1})}

    def waiting_until(self, delivery_id: str) -> dt.datetime | None:
        """`next_at` of a delivery that is pending but not due yet; None otherwise."""
        found = self._deliveries.find_one(
            {"_id": delivery_id, "status": "pending", "next_at": {"$gt": utcnow()}},
            {"next_at": 1},
        )
        return None if found is None else found["next_at"]

    def finish(self, claimed: Doc, values: dict[str, Any], attempt: Attempt) -> bool:
        """Record an attempt's outcome; False when the claim was lost meanwhile."""
        result = self._deliveries.update_one(
            {"_id": claimed["_id"], "status": "sending", "claim": claimed["claim"]},
            outcome_update(values, attempt, utcnow()),
        )
        return result.modified_count == 1

    def find_lost(self, grace: dt.timedelta, limit: int) -> list[Doc]:
        """Deliveries whose job was lost (see `lost`): id, attempts and status."""
        found = self._deliveries.find(
            lost(utcnow(), grace), {"_id": 1, "attempts": 1, "status": 1}, limit=limit
        )
        return list(found)
