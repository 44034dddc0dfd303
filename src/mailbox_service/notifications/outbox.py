"""The outbox: per-channel notification state on the document, and every change to it.

A channel's state (`documents.notifications.<channel>`, written by ingest as the initial plan):
  status       pending → sending → sent | failed | skipped (sending → pending on a retry;
               any state but a live `sending` → pending on an operator's resend)
  version      0 as ingest writes it (absent), +1 with every change
  attempts     delivery attempts started
  error        the last failure, for operators; reason: why `skipped` (or who resent it)
  at           when the status last changed
  next_at      pending only: not before this time (retry backoff); absent means "now"
  lease_until, claim, worker
               sending only: who holds the job and until when
  sent_at, message_id, locale, relay_reply
               when the relay (or Redis) accepted it, what was sent, and (email) the relay's
               reply to it: its receipt, shown in evidence bundles

Every change is ONE `find_one_and_update` on the document, a compare-and-set: the filter is
the condition the change needs (the channel is claimable; it is still held by this claim; it
may be resent), the update `$set`s and `$inc`s only `notifications.<channel>.*`. MongoDB and
DocumentDB (FerretDB 2, measured: tests/integration/test_outbox_engine.py) apply it atomically,
so of any number of workers racing for one pending channel exactly one matches, a late worker
whose lease was taken over matches nothing, and concurrent writes of other fields (the portal's
`read_at`, the other channel's outcome) are never lost, since nothing writes a document whole.
No transactions and no change streams: DocumentDB has neither.

One definition, two drivers. A change is a `ChannelChange`: the same object gives the update
sent to MongoDB and, applied locally, the state it leaves, so the two cannot drift. Each
operation is written once, as a generator of the database calls it makes (`_claiming`,
`_finishing`, `_resending`, `_finding_lost`); `Outbox` runs them with sync pymongo (the threaded
worker and its sweep), `AsyncOutbox` with the async driver (the admin API and CLI).

See docs/notifications.md for the resulting guarantee and where a crash can still make it differ.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Callable, Generator, Mapping
from typing import Any, Literal, TypeVar

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from mailbox_service.clock import utcnow
from mailbox_service.errors import Conflict, NotFound
from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import Channel
from mailbox_service.storage.mongo import Doc

log = get_logger(__name__)

State = dict[str, Any]
T = TypeVar("T")

OUTBOX_INDEXES = [
    # The sweep and the admin list look documents up by one channel's status.
    IndexModel([("notifications.email.status", ASCENDING)], name="notify_email_status"),
    IndexModel([("notifications.realtime.status", ASCENDING)], name="notify_realtime_status"),
    # Stats count per day of creation.
    IndexModel([("created_at", ASCENDING)], name="created_at"),
]
"""Created by migration 0003, and by the worker at start-up (for a worker run before `migrate`)."""

RESEND_TRIES = 3
"""A resend whose compare-and-set lost to a worker finishing at that moment reads the new state
and tries again; a channel still busy after this many tries is reported busy."""

# Lease fields cleared whenever a channel leaves `sending`.
_RELEASE = {"lease_until": None, "claim": None, "worker": None}


def field(channel: Channel, name: str) -> str:
    return f"notifications.{channel}.{name}"


def version_of(state: Mapping[str, Any]) -> int:
    return int(state.get("version") or 0)


# -- changes: one object for the update sent and the state it leaves ------------------------


@dataclasses.dataclass(frozen=True)
class ChannelChange:
    """What a change does to the fields of one channel, and nothing else."""

    set: Mapping[str, Any]
    inc: Mapping[str, int] = dataclasses.field(default_factory=dict)
    unset: tuple[str, ...] = ()

    def update(self, channel: Channel) -> Doc:
        """The MongoDB update: `notifications.<channel>.<name>` paths only."""
        update: Doc = {"$set": {field(channel, k): v for k, v in self.set.items()}}
        if self.inc:
            update["$inc"] = {field(channel, k): n for k, n in self.inc.items()}
        if self.unset:
            update["$unset"] = {field(channel, k): "" for k in self.unset}
        return update

    def applied_to(self, state: Mapping[str, Any]) -> State:
        """The state the update leaves behind when applied to `state` (as MongoDB does it)."""
        new = {k: v for k, v in state.items() if k not in self.unset}
        new.update(self.set)
        for name, n in self.inc.items():
            new[name] = int(state.get(name) or 0) + n
        return new


def claim_change(token: str, worker: str, now: dt.datetime, lease: dt.timedelta) -> ChannelChange:
    return ChannelChange(
        set={
            "status": "sending",
            "claim": token,
            "worker": worker,
            "lease_until": now + lease,
            "at": now,
        },
        inc={"attempts": 1, "version": 1},
    )


def outcome_change(values: Mapping[str, Any], *, counts_attempt: bool = False) -> ChannelChange:
    """`counts_attempt`: the outcome of an attempt without a claim, which counts the attempt
    itself (a claim counts it otherwise)."""
    inc = {"version": 1, "attempts": 1} if counts_attempt else {"version": 1}
    return ChannelChange(set={**values, **_RELEASE}, inc=inc)


def resend_change(now: dt.datetime, by: str) -> ChannelChange:
    """A fresh pending state: attempts start again from zero, the last delivery is forgotten."""
    return ChannelChange(
        set={
            "status": "pending",
            "attempts": 0,
            "error": None,
            "reason": f"resent by {by}",
            "at": now,
            "next_at": now,
            "resent_at": now,
            **_RELEASE,
        },
        inc={"version": 1},
        unset=("sent_at", "message_id", "locale", "relay_reply"),
    )


def claimed_state(
    state: Mapping[str, Any], token: str, worker: str, now: dt.datetime, lease: dt.timedelta
) -> State:
    return claim_change(token, worker, now, lease).applied_to(state)


def outcome_state(claimed: Mapping[str, Any], values: Mapping[str, Any]) -> State:
    return outcome_change(values).applied_to(claimed)


def resend_state(state: Mapping[str, Any], now: dt.datetime, by: str) -> State:
    return resend_change(now, by).applied_to(state)


# -- conditions: as predicates on a state, and as the filters the changes use ----------------
# Each pair must agree; tests/integration/test_outbox_engine.py checks them against the engine.


def is_claimable(state: Mapping[str, Any], now: dt.datetime) -> bool:
    """Pending and due, or sending with an expired lease (its worker died or stalled)."""
    status = state.get("status")
    if status == "pending":
        next_at = state.get("next_at")
        return next_at is None or next_at <= now
    if status == "sending":
        lease_until = state.get("lease_until")
        return lease_until is None or lease_until < now
    return False


def claimable(channel: Channel, now: dt.datetime) -> Doc:
    status, next_at, lease_until = (field(channel, n) for n in ("status", "next_at", "lease_until"))
    return {
        "$or": [
            {status: "pending", next_at: None},  # None matches an absent field too
            {status: "pending", next_at: {"$lte": now}},
            {status: "sending", lease_until: None},
            {status: "sending", lease_until: {"$lt": now}},
        ]
    }


def is_lost(state: Mapping[str, Any], now: dt.datetime, grace: dt.timedelta) -> bool:
    """A job that should have reached a worker by now: pending for longer than the grace period
    and not waiting for a retry due within it, or sending with an expired lease."""
    status = state.get("status")
    cutoff = now - grace
    if status == "pending":
        at, next_at = state.get("at"), state.get("next_at")
        return (at is None or at < cutoff) and (next_at is None or next_at < cutoff)
    if status == "sending":
        lease_until = state.get("lease_until")
        return lease_until is None or lease_until < now
    return False


def lost(channel: Channel, now: dt.datetime, grace: dt.timedelta) -> Doc:
    cutoff = now - grace
    status, at, next_at, lease_until = (
        field(channel, n) for n in ("status", "at", "next_at", "lease_until")
    )
    not_waiting = {"$not": {"$gte": cutoff}}  # absent, null or before the cutoff
    return {
        "$or": [
            {status: "pending", at: {"$lt": cutoff}, next_at: not_waiting},
            {status: "sending", lease_until: {"$lt": now}},
            # States no change writes (ingest sets `at`, a claim `lease_until`), covered so
            # that the filter says exactly what `is_lost` says.
            {status: "pending", at: None, next_at: not_waiting},
            {status: "sending", lease_until: None},
        ]
    }


def is_resendable(state: Mapping[str, Any], now: dt.datetime) -> bool:
    """Anything but a delivery in progress (which would then run twice)."""
    if state.get("status") != "sending":
        return True
    lease_until = state.get("lease_until")
    return lease_until is None or lease_until < now


def resendable(channel: Channel, now: dt.datetime) -> Doc:
    lease_until = field(channel, "lease_until")
    return {
        "$or": [
            {field(channel, "status"): {"$ne": "sending"}},  # matches an absent channel too
            {lease_until: None},
            {lease_until: {"$lt": now}},
        ]
    }


@dataclasses.dataclass(frozen=True)
class Claim:
    """A channel of one document reserved for this worker until `lease_until`."""

    document: Doc
    channel: Channel
    state: State
    """The claimed (`sending`) state."""
    taken_over_from: str | None = None
    """The worker whose lease had expired, when this claim took its job over."""
    leased: bool = True
    """False for an attempt that wrote nothing before delivering (`Outbox.attempt`): `state`
    is then the state read with `attempts` counted locally, and only the outcome is written,
    on condition that the channel is still at the version read."""

    @property
    def document_id(self) -> str:
        return str(self.document["_id"])

    @property
    def attempts(self) -> int:
        return int(self.state["attempts"])

    @property
    def token(self) -> str:
        return str(self.state["claim"])


def held(claim: Claim) -> Doc:
    """The channel is still exactly as this claim left it (no one took the job over); for an
    attempt without a lease: still exactly as it was read (no one recorded it meanwhile)."""
    if not claim.leased:
        read_version = claim.state.get("version")  # None matches an absent field too
        return {"_id": claim.document_id, field(claim.channel, "version"): read_version}
    return {
        "_id": claim.document_id,
        field(claim.channel, "status"): "sending",
        field(claim.channel, "claim"): claim.token,
        field(claim.channel, "version"): version_of(claim.state),
    }


# -- operations, written once as the database calls they make ---------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One collection method call; the drivers below make it with sync or async pymongo."""

    method: Literal["find_one_and_update", "find_one", "find"]
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
        if call.method == "find":
            result = list(result)


async def run_async(collection: AsyncCollection[Doc], steps: Steps[T]) -> T:
    result: Any = None
    while True:
        try:
            call = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        result = getattr(collection, call.method)(**call.kwargs)
        result = await (result.to_list() if call.method == "find" else result)


class _OutboxOperations:
    """The operations, shared by both drivers."""

    def __init__(self, *, lease: dt.timedelta, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.lease = lease
        self.clock = clock

    def _claiming(self, document_id: str, channel: Channel, worker: str) -> Steps[Claim | None]:
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

    def _attempting(self, document_id: str, channel: Channel) -> Steps[Claim | None]:
        now = self.clock()
        doc = yield Call("find_one", {"filter": {"_id": document_id, **claimable(channel, now)}})
        if doc is None:
            return None  # done, not due, held by a worker's lease, or no such document
        previous = dict((doc.get("notifications") or {}).get(channel) or {})
        state = {**previous, "attempts": int(previous.get("attempts") or 0) + 1}
        taken_over_from = previous.get("worker") if previous.get("status") == "sending" else None
        return Claim(doc, channel, state, taken_over_from or None, leased=False)

    def _finishing(self, claim: Claim, values: Mapping[str, Any]) -> Steps[bool]:
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

    def _resending(self, document_id: str, channel: Channel, by: str) -> Steps[State]:
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

    def _finding_lost(
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

    @staticmethod
    def _sent(now: dt.datetime, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "status": "sent",
            "at": now,
            "sent_at": now,
            "error": None,
            "next_at": None,
            **extra,
        }

    @staticmethod
    def _retry(now: dt.datetime, error: str, next_at: dt.datetime) -> dict[str, Any]:
        return {"status": "pending", "at": now, "error": error, "next_at": next_at}

    @staticmethod
    def _failed(now: dt.datetime, error: str) -> dict[str, Any]:
        return {"status": "failed", "at": now, "error": error, "next_at": None}

    @staticmethod
    def _skipped(now: dt.datetime, reason: str) -> dict[str, Any]:
        return {"status": "skipped", "at": now, "reason": reason, "error": None, "next_at": None}


class Outbox(_OutboxOperations):
    """The operations with sync pymongo: the worker (threaded) and its sweep."""

    def __init__(
        self,
        documents: Collection[Doc],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__(lease=lease, clock=clock)
        self.documents = documents

    def claim(self, document_id: str, channel: Channel, worker: str) -> Claim | None:
        """Reserve the channel and read the document, or None when it is not ours to deliver
        (already done, not due, or another worker holds it)."""
        return run_blocking(self.documents, self._claiming(document_id, channel, worker))

    def attempt(self, document_id: str, channel: Channel) -> Claim | None:
        """Read the document if the channel is claimable, writing nothing: for a channel whose
        delivery may happen twice (the real-time event; clients de-duplicate by document id).
        Only the outcome is written, and only if nobody changed the channel meanwhile; two
        workers racing both deliver, one records. Saves the claim's write."""
        return run_blocking(self.documents, self._attempting(document_id, channel))

    def sent(self, claim: Claim, **extra: Any) -> bool:
        """Record success; False if the lease was lost meanwhile (someone else took over)."""
        values = self._sent(self.clock(), extra)
        return run_blocking(self.documents, self._finishing(claim, values))

    def retry_at(self, claim: Claim, error: str, next_at: dt.datetime) -> bool:
        values = self._retry(self.clock(), error, next_at)
        return run_blocking(self.documents, self._finishing(claim, values))

    def failed(self, claim: Claim, error: str) -> bool:
        values = self._failed(self.clock(), error)
        return run_blocking(self.documents, self._finishing(claim, values))

    def skipped(self, claim: Claim, reason: str) -> bool:
        values = self._skipped(self.clock(), reason)
        return run_blocking(self.documents, self._finishing(claim, values))

    def resend(self, document_id: str, channel: Channel, by: str) -> State:
        """Reset the channel to a fresh `pending`; NotFound, or Conflict (printed, busy)."""
        return run_blocking(self.documents, self._resending(document_id, channel, by))

    def find_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None = None
    ) -> list[Doc]:
        """Channels whose job should have reached a worker by now, in `_id` order."""
        return run_blocking(self.documents, self._finding_lost(channel, grace, limit, after_id))


class AsyncOutbox(_OutboxOperations):
    """The same operations with the async driver: the admin API and CLI."""

    def __init__(
        self,
        documents: AsyncCollection[Doc],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__(lease=lease, clock=clock)
        self.documents = documents

    async def claim(self, document_id: str, channel: Channel, worker: str) -> Claim | None:
        return await run_async(self.documents, self._claiming(document_id, channel, worker))

    async def attempt(self, document_id: str, channel: Channel) -> Claim | None:
        return await run_async(self.documents, self._attempting(document_id, channel))

    async def sent(self, claim: Claim, **extra: Any) -> bool:
        values = self._sent(self.clock(), extra)
        return await run_async(self.documents, self._finishing(claim, values))

    async def retry_at(self, claim: Claim, error: str, next_at: dt.datetime) -> bool:
        values = self._retry(self.clock(), error, next_at)
        return await run_async(self.documents, self._finishing(claim, values))

    async def failed(self, claim: Claim, error: str) -> bool:
        values = self._failed(self.clock(), error)
        return await run_async(self.documents, self._finishing(claim, values))

    async def skipped(self, claim: Claim, reason: str) -> bool:
        values = self._skipped(self.clock(), reason)
        return await run_async(self.documents, self._finishing(claim, values))

    async def resend(self, document_id: str, channel: Channel, by: str) -> State:
        return await run_async(self.documents, self._resending(document_id, channel, by))

    async def find_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None = None
    ) -> list[Doc]:
        return await run_async(self.documents, self._finding_lost(channel, grace, limit, after_id))


def ensure_indexes(documents: Collection[Doc]) -> None:
    """Create the outbox indexes if missing; an equivalent index under another name is fine."""
    for index in OUTBOX_INDEXES:
        try:
            documents.create_indexes([index])
        except PyMongoError as exc:
            log.info("outbox.index_skipped", index=index.document["name"], error=str(exc)[:200])
