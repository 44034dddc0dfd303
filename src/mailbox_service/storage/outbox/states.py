"""The outbox's state machine: channel states, the changes between them, and their conditions.

Pure: no database here. A change is a `ChannelChange`: the same object gives the update sent
to MongoDB and, applied locally, the state it leaves, so the two cannot drift. A condition is
written twice on purpose, as a predicate on a state (`is_claimable`) and as the filter a change
uses (`claimable`); tests/integration/notifications/test_outbox_engine.py checks each pair
against the engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

Doc = dict[str, Any]
State = dict[str, Any]

Channel = Literal["email", "realtime"]
CHANNELS: tuple[Channel, ...] = ("email", "realtime")

Status = Literal["pending", "sending", "sent", "failed", "skipped"]
"""`sending` is the claimed state: one worker holds a lease on the channel until it records
the outcome."""
STATUSES: tuple[Status, ...] = ("pending", "sending", "sent", "failed", "skipped")

UNDELIVERED: tuple[Status, ...] = ("pending", "sending")
"""What a worker still has to do: new or waiting for a retry, and claimed."""

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


# The outcomes a worker records (the `set` of an outcome change).


def sent_values(now: dt.datetime, extra: Mapping[str, Any]) -> dict[str, Any]:
    return {"status": "sent", "at": now, "sent_at": now, "error": None, "next_at": None, **extra}


def retry_values(now: dt.datetime, error: str, next_at: dt.datetime) -> dict[str, Any]:
    return {"status": "pending", "at": now, "error": error, "next_at": next_at}


def failed_values(now: dt.datetime, error: str) -> dict[str, Any]:
    return {"status": "failed", "at": now, "error": error, "next_at": None}


def skipped_values(now: dt.datetime, reason: str) -> dict[str, Any]:
    return {"status": "skipped", "at": now, "reason": reason, "error": None, "next_at": None}


# -- conditions: as predicates on a state, and as the filters the changes use ----------------
# Each pair must agree; tests/integration/notifications/test_outbox_engine.py checks them
# against the engine.


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
