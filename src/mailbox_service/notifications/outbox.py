"""The outbox: per-channel notification state, and every change to it.

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
  sent_at, message_id, locale
               when the relay (or Redis) accepted it, and what was sent

Why not one `find_one_and_update` compare-and-set: FerretDB 1.x runs an update as read, modify,
write back the whole document, without isolation. Measured on the test stack: 8 threads racing
one conditional update all "win" (up to 7 of 8), and two concurrent `$set`s of *different*
fields of one document lose one of them 2 times in 3 (the email and the real-time job of a
document finish at the same moment all the time). What FerretDB does make atomic, like
MongoDB, is a unique key.

So the truth is a log of transitions, `notification_transitions`, one row per state version
left: `_id = "<document>:<channel>:<version>"`, holding the state that follows it. Inserting that
row *is* the change; exactly one insert per version succeeds, whoever else read the same
version fails, however late. The document's `notifications.<channel>` is a view of the latest
state, written after each change on a best-effort basis: when another write clobbers it, anyone
who next needs the truth (a claim, a resend, the sweep) follows the log from the version the
view shows and repairs the view. A claim does not even write the view (one write fewer per
delivery, and one fewer chance to clobber); the outcome does.

See docs/notifications.md for the resulting guarantee and where a crash can still make it differ.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from mailbox_service.notifications.channels import Channel
from mailbox_service.notifications.recent import RecentDocuments
from mailbox_service.notifications.views import ViewWriter
from mailbox_service.storage.mongo import Doc, utcnow

TRANSITIONS = "notification_transitions"
TRANSITION_RETENTION = dt.timedelta(days=2)
"""Log rows older than this are deleted by the sweep. Far longer than a worker can sit between
reading a state and changing it, and than the sweep needs to repair a clobbered view."""
MAX_FOLLOW = 1000
"""Bound on following the log in one go (a channel changes a handful of times in its life)."""

State = dict[str, Any]

# Lease fields cleared whenever a channel leaves `sending`.
_RELEASE = {"lease_until": None, "claim": None, "worker": None}


def field(channel: Channel, name: str) -> str:
    return f"notifications.{channel}.{name}"


def version_of(state: Mapping[str, Any]) -> int:
    return int(state.get("version") or 0)


def transition_key(document_id: str, channel: Channel, version: int) -> str:
    return f"{document_id}:{channel}:{version}"


def transition_record(
    document_id: str, channel: Channel, state: Mapping[str, Any], by: str, now: dt.datetime
) -> Doc:
    """The log row for leaving the version before `state`: unique, so it happens once."""
    left = version_of(state) - 1
    return {
        "_id": transition_key(document_id, channel, left),
        "document_id": document_id,
        "channel": channel,
        "version": left,
        "state": dict(state),
        "by": by,
        "at": now,
    }


# -- the state machine (pure) ---------------------------------------------------------------


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


def is_lost(state: Mapping[str, Any], now: dt.datetime, grace: dt.timedelta) -> bool:
    """A job that should have reached a worker by now: pending and overdue by more than the
    grace period, or sending with an expired lease."""
    status = state.get("status")
    if status == "pending":
        due = state.get("next_at") or state.get("at")
        return due is None or due < now - grace
    if status == "sending":
        lease_until = state.get("lease_until")
        return lease_until is None or lease_until < now
    return False


def is_resendable(state: Mapping[str, Any], now: dt.datetime) -> bool:
    """Anything but a delivery in progress (which would then run twice)."""
    if state.get("status") != "sending":
        return True
    lease_until = state.get("lease_until")
    return lease_until is None or lease_until < now


def claimed_state(
    state: Mapping[str, Any], token: str, worker: str, now: dt.datetime, lease: dt.timedelta
) -> State:
    return {
        **state,
        "status": "sending",
        "version": version_of(state) + 1,
        "attempts": int(state.get("attempts") or 0) + 1,
        "claim": token,
        "worker": worker,
        "lease_until": now + lease,
        "at": now,
    }


def outcome_state(claimed: Mapping[str, Any], values: Mapping[str, Any]) -> State:
    return {**claimed, **values, **_RELEASE, "version": version_of(claimed) + 1}


def resend_state(state: Mapping[str, Any], now: dt.datetime, by: str) -> State:
    """A fresh pending state: attempts start again from zero."""
    return {
        "status": "pending",
        "version": version_of(state) + 1,
        "attempts": 0,
        "error": None,
        "reason": f"resent by {by}",
        "at": now,
        "next_at": now,
        "resent_at": now,
    }


def lost(channel: Channel, now: dt.datetime, grace: dt.timedelta) -> dict[str, Any]:
    """`is_lost` as a query on the views (the sweep then checks the log)."""
    cutoff = now - grace
    return {
        "$or": [
            {
                field(channel, "status"): "pending",
                field(channel, "at"): {"$lt": cutoff},
                field(channel, "next_at"): {"$not": {"$gte": cutoff}},
            },
            {field(channel, "status"): "sending", field(channel, "lease_until"): {"$lt": now}},
        ]
    }


@dataclass(frozen=True)
class Claim:
    """A channel of one document reserved for this worker until `lease_until`."""

    document: Doc
    channel: Channel
    state: State
    """The claimed (`sending`) state."""
    taken_over_from: str | None = None
    """The worker whose lease had expired, when this claim took its job over."""

    @property
    def document_id(self) -> str:
        return str(self.document["_id"])

    @property
    def attempts(self) -> int:
        return int(self.state["attempts"])

    @property
    def token(self) -> str:
        return str(self.state["claim"])


class Outbox:
    """State changes for the worker and the sweep (sync pymongo: the worker is threaded)."""

    def __init__(
        self,
        documents: Collection[Doc],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
        views: ViewWriter | None = None,
        recent: RecentDocuments | None = None,
    ) -> None:
        """`views`: write views in the background (the worker); None writes them at once.
        `recent`: share document reads between the jobs of one document (the worker)."""
        self.documents = documents
        self.transitions: Collection[Doc] = documents.database[TRANSITIONS]
        self.lease = lease
        self.clock = clock
        self.views = views
        self.recent = recent

    # -- the log --------------------------------------------------------------------------

    def change(self, document_id: str, channel: Channel, new: State, by: str) -> bool:
        """Record `new` as the state after version(new) - 1; False if someone else did first."""
        try:
            self.transitions.insert_one(
                transition_record(document_id, channel, new, by, self.clock())
            )
        except DuplicateKeyError:
            return False
        return True

    def following(self, document_id: str, channel: Channel, state: State) -> State | None:
        """The state recorded after `state`'s version, if any."""
        row = self.transitions.find_one(
            {"_id": transition_key(document_id, channel, version_of(state))}, {"state": 1}
        )
        return dict(row["state"]) if row else None

    def latest(self, document_id: str, channel: Channel, view: State) -> tuple[State, bool]:
        """Follow the log from the view's version; (state, whether the view was behind)."""
        state, behind = view, False
        for _ in range(MAX_FOLLOW):
            after = self.following(document_id, channel, state)
            if after is None:
                break
            state, behind = after, True
        return state, behind

    def show(self, document_id: str, channel: Channel, state: State) -> None:
        """Write the view (best effort: the log stays the truth if this gets clobbered)."""
        if self.recent is not None:
            self.recent.update_state(document_id, channel, state)
        if self.views is not None:
            self.views.submit(document_id, channel, state)
            return
        self.documents.update_one(
            {"_id": document_id}, {"$set": {f"notifications.{channel}": state}}
        )

    def _load(self, document_id: str) -> Doc | None:
        doc = self.recent.get(document_id) if self.recent is not None else None
        if doc is None:
            doc = self.documents.find_one({"_id": document_id})
            if doc is not None and self.recent is not None:
                self.recent.put(doc)
        return doc

    def current(self, document_id: str, channel: Channel, view: State) -> State:
        """The latest state, repairing the view when it was behind."""
        state, behind = self.latest(document_id, channel, view)
        if behind:
            self.show(document_id, channel, state)
        return state

    # -- the worker's side ----------------------------------------------------------------

    def claim(self, document_id: str, channel: Channel, worker: str) -> Claim | None:
        """Reserve the channel, or None when it is not ours to deliver (already done, not due,
        or another worker holds it)."""
        doc = self._load(document_id)
        view = ((doc or {}).get("notifications") or {}).get(channel)
        if doc is None or view is None:
            return None
        state, behind = dict(view), False
        for _ in range(MAX_FOLLOW):
            now = self.clock()
            if is_claimable(state, now):
                new = claimed_state(state, secrets.token_hex(8), worker, now, self.lease)
                if self.change(document_id, channel, new, worker):
                    doc["notifications"][channel] = new
                    previous = state.get("worker") if state.get("status") == "sending" else None
                    return Claim(doc, channel, new, previous or None)
            # Lost the race, or the view is behind the log: follow the log one step.
            after = self.following(document_id, channel, state)
            if after is None:
                break
            state, behind = after, True
        if behind:
            self.show(document_id, channel, state)
        return None

    def _finish(self, claim: Claim, values: Mapping[str, Any]) -> bool:
        new = outcome_state(claim.state, values)
        if not self.change(claim.document_id, claim.channel, new, claim.state["worker"]):
            return False  # our lease expired and another worker took the job over
        self.show(claim.document_id, claim.channel, new)
        return True

    def sent(self, claim: Claim, **extra: Any) -> bool:
        """Record success; False if the lease was lost meanwhile (someone else took over)."""
        now = self.clock()
        return self._finish(
            claim,
            {"status": "sent", "at": now, "sent_at": now, "error": None, "next_at": None, **extra},
        )

    def retry_at(self, claim: Claim, error: str, next_at: dt.datetime) -> bool:
        return self._finish(
            claim, {"status": "pending", "at": self.clock(), "error": error, "next_at": next_at}
        )

    def failed(self, claim: Claim, error: str) -> bool:
        return self._finish(
            claim, {"status": "failed", "at": self.clock(), "error": error, "next_at": None}
        )

    def skipped(self, claim: Claim, reason: str) -> bool:
        return self._finish(
            claim,
            {
                "status": "skipped",
                "at": self.clock(),
                "reason": reason,
                "error": None,
                "next_at": None,
            },
        )

    # -- the sweep's side -----------------------------------------------------------------

    def find_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None = None
    ) -> list[Doc]:
        """Views that look lost, in `_id` order from `after_id` (the log may say otherwise)."""
        query = lost(channel, self.clock(), grace)
        if after_id is not None:
            query = {"$and": [query, {"_id": {"$gt": after_id}}]}
        projection = {"_id": 1, f"notifications.{channel}": 1}
        return list(self.documents.find(query, projection).sort("_id", 1).limit(limit))

    def forget_old_transitions(self, retention: dt.timedelta = TRANSITION_RETENTION) -> int:
        cutoff = self.clock() - retention
        return self.transitions.delete_many({"at": {"$lt": cutoff}}).deleted_count
