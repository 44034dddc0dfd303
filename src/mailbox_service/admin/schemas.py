"""Response bodies of the operator API (`/v1/admin/...`); the CLI prints the same structures."""

from __future__ import annotations

import datetime as dt

import msgspec


class CountRow(msgspec.Struct, frozen=True):
    """How many documents of `type` have `channel` in `status`."""

    channel: str
    type: str
    status: str
    count: int


class DayRow(msgspec.Struct, frozen=True):
    """The same count for the documents created on one UTC day (`YYYY-MM-DD`)."""

    day: str
    channel: str
    type: str
    status: str
    count: int


class NotificationStats(msgspec.Struct, frozen=True):
    """Counts of documents created in [since, until) by channel x status x type, and per day."""

    since: dt.datetime
    until: dt.datetime
    summary: dict[str, dict[str, int]]
    """channel → status → count, over all types."""
    totals: list[CountRow]
    days: list[DayRow]


class ChannelState(msgspec.Struct, frozen=True, omit_defaults=True):
    """One channel's outbox state (see docs/notifications.md)."""

    status: str
    attempts: int = 0
    error: str | None = None
    reason: str | None = None
    at: dt.datetime | None = None
    next_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    lease_until: dt.datetime | None = None
    worker: str | None = None


class NotificationItem(msgspec.Struct, frozen=True):
    """A document with the outbox state of each of its channels."""

    document_id: str
    type: str
    account_id: str
    source: str
    source_ref: str
    title: str
    created_at: dt.datetime
    notifications: dict[str, ChannelState]


class NotificationPage(msgspec.Struct, frozen=True):
    items: list[NotificationItem]
    next_cursor: str | None


class ResendResult(msgspec.Struct, frozen=True):
    document_id: str
    channel: str
    status: str
    enqueued: bool
    """False when Redis was unreachable; the outbox sweep enqueues it later."""
