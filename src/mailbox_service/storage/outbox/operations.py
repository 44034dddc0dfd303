"""Every outbox operation, written once as the database calls it makes.

An operation is a generator: it yields a `Call` (one collection method and its arguments),
receives that call's result, and returns its own. `run_blocking` makes the calls with sync
pymongo (the threaded worker, its sweep, the metrics scrape), `run_async` with the async driver
(the admin API and CLI); stores.py binds them. So the sync and the async outbox send the same
filters and updates, and the same number of round trips, by construction.

Each change is ONE `find_one_and_update` on the document, a compare-and-set: the filter is
the condition the change needs, the update touches only `notifications.<channel>.*`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable, Generator, Mapping
from typing import Any, Literal, TypeVar

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from mailbox_service.errors import Conflict, NotFound
from mailbox_service.storage.outbox.indexes import status_index
from mailbox_service.storage.outbox.states import (
    CHANNELS,
    UNDELIVERED,
    Channel,
    Claim,
    Doc,
    State,
    claim_change,
    claimable,
    failed_values,
    field,
    held,
    is_resendable,
    lost,
    outcome_change,
    resend_change,
    resendable,
    retry_values,
    sent_values,
    skipped_values,
)

T = TypeVar("T")

RESEND_TRIES = 3
"""A resend whose compare-and-set lost to a worker finishing at that moment reads the new state
and tries again; a channel still busy after this many tries is reported busy."""

Method = Literal["find_one_and_update", "find_one", "find", "aggregate", "count_documents"]
_CURSORS = frozenset({"find", "aggregate"})
"""Methods that answer with a cursor: the drivers read it to the end (every call here bounds
its answer: a page, a batch, one day's groups)."""


@dataclasses.dataclass(frozen=True)
class Call:
    """One collection method call; the drivers below make it with sync or async pymongo."""

    method: Method
    kwargs: Mapping[str, Any]


Steps = Generator[Call, Any, T]
"""An operation: yields the calls it makes, receives each one's result, returns its own."""


def run_blocking(collection: Collection[Doc], steps: Steps[T]) -> T:
    result: Any = None
    while True:
        try:
            call = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = getattr(collection, call.method)(**call.kwargs)
        if call.method in _CURSORS:
            result = list(result)


async def run_async(collection: AsyncCollection[Doc], steps: Steps[T]) -> T:
    result: Any = None
    while True:
        try:
            call = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = getattr(collection, call.method)(**call.kwargs)
        if call.method == "aggregate":  # the async driver's aggregate is a coroutine
            result = await result
        result = await (result.to_list() if call.method in _CURSORS else result)


def day_pipeline(low: dt.datetime, high: dt.datetime) -> list[Doc]:
    """Documents created in [low, high) grouped by type and each channel's status, with their
    count: `{"_id": {"type", <channel>: status}, "count"}`. Served by the `created_at` index;
    only `$match` and `$group` with `$sum`, which every engine runs (no date operators: one
    pipeline per UTC day, and the caller adds the days up)."""
    return [
        {"$match": {"created_at": {"$gte": low, "$lt": high}}},
        {
            "$group": {
                "_id": {
                    "type": "$type",
                    **{channel: f"$notifications.{channel}.status" for channel in CHANNELS},
                },
                "count": {"$sum": 1},
            }
        },
    ]


@dataclasses.dataclass(frozen=True)
class Backlog:
    """One channel's undelivered notifications: how many, and the oldest one's document."""

    pending: int
    oldest_created_at: dt.datetime | None


class OutboxOperations:
    """The operations, shared by both drivers."""

    def __init__(self, *, lease: dt.timedelta, clock: Callable[[], dt.datetime]) -> None:
        self.lease = lease
        self.clock = clock

    # -- the worker's state machine ---------------------------------------------------------

    def claiming(self, document_id: str, channel: Channel, worker: str) -> Steps[Claim | None]:
        now = self.clock()
        change = claim_change(secrets.token_hex(8), worker, now, self.lease)
        before = yield Call(
            "find_one_and_update",
            {
                "filter": {"_id": document_id, **claimable(channel, now)},
                "update": change.update(channel),
                # As it was: who held an expired lease; the claimed state is `change` applied.
                "return_document": ReturnDocument.BEFORE,
            },
        )
        if before is None:
            return None  # done, not due, held by another worker, or no such document
        previous = dict((before.get("notifications") or {}).get(channel) or {})
        state = change.applied_to(previous)
        before.setdefault("notifications", {})[channel] = state
        taken_over_from = previous.get("worker") if previous.get("status") == "sending" else None
        return Claim(before, channel, state, taken_over_from or None)

    def attempting(self, document_id: str, channel: Channel) -> Steps[Claim | None]:
        now = self.clock()
        doc = yield Call("find_one", {"filter": {"_id": document_id, **claimable(channel, now)}})
        if doc is None:
            return None  # done, not due, held by a worker's lease, or no such document
        previous = dict((doc.get("notifications") or {}).get(channel) or {})
        state = {**previous, "attempts": int(previous.get("attempts") or 0) + 1}
        taken_over_from = previous.get("worker") if previous.get("status") == "sending" else None
        return Claim(doc, channel, state, taken_over_from or None, leased=False)

    def finishing(self, claim: Claim, values: Mapping[str, Any]) -> Steps[bool]:
        change = outcome_change(values, counts_attempt=not claim.leased)
        done = yield Call(
            "find_one_and_update",
            {
                "filter": held(claim),
                "update": change.update(claim.channel),
                "projection": {"_id": 1},
            },
        )
        return done is not None  # None: our lease expired and another worker took the job over

    def sending(self, claim: Claim, extra: Mapping[str, Any]) -> Steps[bool]:
        return self.finishing(claim, sent_values(self.clock(), extra))

    def retrying(self, claim: Claim, error: str, next_at: dt.datetime) -> Steps[bool]:
        return self.finishing(claim, retry_values(self.clock(), error, next_at))

    def failing(self, claim: Claim, error: str) -> Steps[bool]:
        return self.finishing(claim, failed_values(self.clock(), error))

    def skipping(self, claim: Claim, reason: str) -> Steps[bool]:
        return self.finishing(claim, skipped_values(self.clock(), reason))

    # -- operators ---------------------------------------------------------------------------

    def resending(self, document_id: str, channel: Channel, by: str) -> Steps[State]:
        for _ in range(RESEND_TRIES):
            now = self.clock()
            condition = {"_id": document_id, **resendable(channel, now)}
            if channel == "email":
                condition["delivery.mode"] = {"$ne": "print"}
            after = yield Call(
                "find_one_and_update",
                {
                    "filter": condition,
                    "update": resend_change(now, by).update(channel),
                    "projection": {f"notifications.{channel}": 1},
                    "return_document": ReturnDocument.AFTER,
                },
            )
            if after is not None:
                return dict(after["notifications"][channel])
            doc = yield Call(
                "find_one",
                {"filter": {"_id": document_id}, "projection": {"delivery": 1, "notifications": 1}},
            )
            if doc is None:
                raise NotFound(f"no document {document_id!r}")
            if channel == "email" and (doc.get("delivery") or {}).get("mode") == "print":
                raise Conflict(
                    "this document is delivered on paper (the account has no paperless consent "
                    "or the type is not digital); no email is sent for it",
                    field="channel",
                )
            state = (doc.get("notifications") or {}).get(channel) or {}
            if not is_resendable(state, self.clock()):
                break
            # A worker finished between our two calls: the channel is resendable now.
        raise Conflict(
            f"the {channel} notification is being delivered right now; try again shortly",
            field="channel",
        )

    def paging(
        self,
        status: str,
        channels: tuple[Channel, ...],
        limit: int,
        before: tuple[dt.datetime, str] | None,
    ) -> Steps[list[Doc]]:
        """Documents with any of `channels` in `status`, newest first (created_at, then _id),
        after the keyset position `before`; at most `limit`."""
        clauses: list[Doc] = [{"$or": [{field(ch, "status"): status} for ch in channels]}]
        if before is not None:
            created, document_id = before
            clauses.append(
                {
                    "$or": [
                        {"created_at": {"$lt": created}},
                        {"created_at": created, "_id": {"$lt": document_id}},
                    ]
                }
            )
        found: list[Doc] = yield Call(
            "find",
            {
                "filter": {"$and": clauses},
                "sort": [("created_at", DESCENDING), ("_id", DESCENDING)],
                "limit": limit,
            },
        )
        return found

    def counting_day(self, low: dt.datetime, high: dt.datetime) -> Steps[list[Doc]]:
        """`day_pipeline`'s groups."""
        groups: list[Doc] = yield Call("aggregate", {"pipeline": day_pipeline(low, high)})
        return groups

    # -- the sweep and the metrics -----------------------------------------------------------

    def finding_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None
    ) -> Steps[list[Doc]]:
        query = lost(channel, self.clock(), grace)
        if after_id is not None:
            query = {"$and": [query, {"_id": {"$gt": after_id}}]}
        found: list[Doc] = yield Call(
            "find",
            {
                "filter": query,
                "projection": {"_id": 1, f"notifications.{channel}": 1},
                "sort": [("_id", ASCENDING)],
                "limit": limit,
            },
        )
        return found

    def measuring_backlog(self, channel: Channel, timeout_ms: int) -> Steps[Backlog]:
        """A count and the oldest undelivered document's `created_at`, both on the channel's
        status index, never `created_at`'s: walking documents by age until the first
        undelivered one could read the whole collection."""
        query = {field(channel, "status"): {"$in": list(UNDELIVERED)}}
        by_status = status_index(channel)
        pending: int = yield Call(
            "count_documents", {"filter": query, "maxTimeMS": timeout_ms, "hint": by_status}
        )
        if not pending:
            return Backlog(0, None)
        first: Doc | None = yield Call(
            "find_one",
            {
                "filter": query,
                "projection": {"created_at": 1},
                "sort": [("created_at", ASCENDING)],
                "hint": by_status,
                "max_time_ms": timeout_ms,
            },
        )
        return Backlog(pending, first.get("created_at") if first is not None else None)
