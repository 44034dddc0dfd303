"""NotificationAdmin: what operators ask about notifications, for the API and the CLI alike.

Stats use only aggregation stages FerretDB 1.x runs (`$match`, `$group` with `$sum`), which
has no date operators (`$dateToString`, `$dateTrunc`, even `$subtract`). So "per day" is one
small `$match`+`$group` per UTC day of the window (served by the `created_at` index), run a few
at a time, and the totals are summed from the days: one pipeline shape, no branch on the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import msgspec
from pymongo.asynchronous.collection import AsyncCollection

from mailbox_service.admin.schemas import (
    ChannelState,
    CountRow,
    DayRow,
    NotificationItem,
    NotificationPage,
    NotificationStats,
    ResendResult,
)
from mailbox_service.clock import utcnow
from mailbox_service.cursors import CursorSigner, Position, filters_digest
from mailbox_service.errors import BadRequest
from mailbox_service.notifications.channels import CHANNELS, STATUSES, Channel
from mailbox_service.notifications.outbox import AsyncOutbox, field
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.storage.mongo import Doc
from mailbox_service.untrusted import quoted
from mailbox_service.wiring.services import Services

DEFAULT_WINDOW = dt.timedelta(days=7)
MAX_WINDOW = dt.timedelta(days=366)
MAX_PAGE = 200
_DAY = dt.timedelta(days=1)
_PARALLEL_DAYS = 8
_MISSING = "none"
"""Status shown for a document that has no state for a channel (written before it existed)."""


def parse_channel(value: str | None) -> Channel:
    if value not in CHANNELS:
        known = ", ".join(CHANNELS)
        raise BadRequest(
            f"channel: unknown channel {quoted(value)}; known: {known}", field="channel"
        )
    return value


def parse_status(value: str) -> str:
    if value not in STATUSES:
        known = ", ".join(STATUSES)
        raise BadRequest(f"status: unknown status {quoted(value)}; known: {known}", field="status")
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive datetimes from a query string are taken as UTC."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def stats_window(
    since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """[since, until) in UTC; default the last 7 days; at most a year."""
    end = _utc(until or now)
    start = _utc(since) if since else end - DEFAULT_WINDOW
    if start >= end:
        raise BadRequest("since: must be before until", field="since")
    if end - start > MAX_WINDOW:
        raise BadRequest(
            f"since: the window may span at most {MAX_WINDOW.days} days", field="since"
        )
    return start, end


def day_slices(
    since: dt.datetime, until: dt.datetime
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """The UTC days the window touches, each clipped to the window."""
    start = since.replace(hour=0, minute=0, second=0, microsecond=0)
    slices = []
    while start < until:
        end = start + _DAY
        slices.append((start.date().isoformat(), max(since, start), min(until, end)))
        start = end
    return slices


def day_pipeline(low: dt.datetime, high: dt.datetime) -> list[dict[str, Any]]:
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


def list_digest(status: str, channels: tuple[Channel, ...]) -> str:
    """What a cursor of the notification list is bound to: this list, its status, channels."""
    return filters_digest(b"admin-notifications\x00" + msgspec.json.encode([status, channels]))


def _state(raw: dict[str, Any] | None) -> ChannelState:
    raw = raw or {"status": _MISSING}
    return msgspec.convert(
        {k: v for k, v in raw.items() if k in ChannelState.__struct_fields__ and v is not None},
        ChannelState,
        strict=False,
    )


def _item(doc: Doc) -> NotificationItem:
    states = doc.get("notifications") or {}
    return NotificationItem(
        document_id=doc["_id"],
        type=doc["type"],
        account_id=doc["account_id"],
        source=doc.get("source", ""),
        source_ref=doc.get("source_ref", ""),
        title=doc.get("title", ""),
        created_at=doc["created_at"],
        notifications={channel: _state(states.get(channel)) for channel in CHANNELS},
    )


class NotificationAdmin:
    def __init__(
        self,
        documents: AsyncCollection[Doc],
        queue: NotificationQueue,
        outbox: AsyncOutbox,
        cursors: CursorSigner,
    ) -> None:
        self.documents = documents
        self.queue = queue
        self.outbox = outbox
        self.cursors = cursors

    @classmethod
    def of(cls, services: Services) -> NotificationAdmin:
        documents = services.documents.collection
        lease = dt.timedelta(seconds=services.settings.notify.lease_s)
        return cls(documents, services.queue, AsyncOutbox(documents, lease=lease), services.cursors)

    async def stats(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> NotificationStats:
        since, until = stats_window(since, until, utcnow())
        limit = asyncio.Semaphore(_PARALLEL_DAYS)

        async def count_day(low: dt.datetime, high: dt.datetime) -> list[dict[str, Any]]:
            async with limit:
                cursor = await self.documents.aggregate(day_pipeline(low, high))
                return [group async for group in cursor]

        slices = day_slices(since, until)
        results = await asyncio.gather(*(count_day(low, high) for _, low, high in slices))
        day_counts: Counter[tuple[str, str, str, str]] = Counter()
        for (day, _, _), groups in zip(slices, results, strict=True):
            for group in groups:
                key = group["_id"]
                for channel in CHANNELS:
                    status = key.get(channel) or _MISSING
                    day_counts[(day, channel, key.get("type") or _MISSING, status)] += group[
                        "count"
                    ]
        totals: Counter[tuple[str, str, str]] = Counter()
        summary: dict[str, dict[str, int]] = defaultdict(dict)
        for (_, name, doctype, status), count in day_counts.items():
            totals[(name, doctype, status)] += count
        for (name, _, status), count in totals.items():
            summary[name][status] = summary[name].get(status, 0) + count
        return NotificationStats(
            since=since,
            until=until,
            summary={name: dict(sorted(summary[name].items())) for name in sorted(summary)},
            totals=[CountRow(c, t, s, n) for (c, t, s), n in sorted(totals.items())],
            days=[DayRow(d, c, t, s, n) for (d, c, t, s), n in sorted(day_counts.items())],
        )

    async def list(
        self,
        status: str = "failed",
        channel: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> NotificationPage:
        """Documents whose `channel` (any channel when None) is in `status`, newest first."""
        status = parse_status(status)
        channels = [parse_channel(channel)] if channel is not None else list(CHANNELS)
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
        clauses: list[dict[str, Any]] = [
            {"$or": [{field(ch, "status"): status} for ch in channels]}
        ]
        digest = list_digest(status, tuple(channels))
        if cursor:
            after = self.cursors.decode(cursor, digest)
            created, document_id = after.issued_at, after.id
            clauses.append(
                {
                    "$or": [
                        {"created_at": {"$lt": created}},
                        {"created_at": created, "_id": {"$lt": document_id}},
                    ]
                }
            )
        found = self.documents.find({"$and": clauses}).sort([("created_at", -1), ("_id", -1)])
        docs = [doc async for doc in found.limit(limit + 1)]
        more = len(docs) > limit
        docs = docs[:limit]
        last = Position(docs[-1]["created_at"], docs[-1]["_id"]) if more else None
        next_cursor = self.cursors.encode(last, digest) if last else None
        return NotificationPage([_item(doc) for doc in docs], next_cursor)

    async def resend(self, document_id: str, channel: str | None, by: str) -> ResendResult:
        """Reset `channel` of the document to a fresh `pending` and enqueue it.

        NotFound for an unknown document; Conflict for email of a printed document, or while
        a worker holds a live lease on the channel (it would then be delivered twice)."""
        chosen = parse_channel(channel)
        await self.outbox.resend(document_id, chosen, by)
        enqueued = await self.queue.enqueue(document_id, [chosen])
        return ResendResult(document_id, chosen, "pending", enqueued)
