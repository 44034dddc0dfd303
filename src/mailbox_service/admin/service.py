"""NotificationAdmin: what operators ask about notifications, for the API and the CLI alike.

Stats use only aggregation stages FerretDB 1.x runs (`$match`, `$group` with `$sum`), which
has no date operators (`$dateToString`, `$dateTrunc`, even `$subtract`). So "per day" is one
small `$match`+`$group` per UTC day of the window (served by the `created_at` index), run a few
at a time, and the totals are summed from the days: one pipeline shape, no branch on the server.
The queries themselves are the outbox store's (storage/outbox: `AsyncOutbox.count_day`,
`page`, `resend`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import msgspec

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
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.storage.outbox import AsyncOutbox
from mailbox_service.storage.stored_document import StoredDocument
from mailbox_service.untrusted import quoted

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


def _item(doc: StoredDocument) -> NotificationItem:
    return NotificationItem(
        document_id=doc.id,
        type=doc.type,
        account_id=doc.account_id,
        source=doc.source,
        source_ref=doc.source_ref,
        title=doc.title,
        created_at=doc.created_at,
        notifications={channel: _state(doc.notifications.get(channel)) for channel in CHANNELS},
    )


class NotificationAdmin:
    def __init__(
        self, queue: NotificationQueue, outbox: AsyncOutbox, cursors: CursorSigner
    ) -> None:
        self.queue = queue
        self.outbox = outbox
        self.cursors = cursors

    async def stats(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> NotificationStats:
        since, until = stats_window(since, until, utcnow())
        limit = asyncio.Semaphore(_PARALLEL_DAYS)

        async def count_day(low: dt.datetime, high: dt.datetime) -> list[dict[str, Any]]:
            async with limit:
                return await self.outbox.count_day(low, high)

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
        channels = (parse_channel(channel),) if channel is not None else CHANNELS
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
        digest = list_digest(status, channels)
        after = self.cursors.decode(cursor, digest) if cursor else None
        before = (after.sort_time, after.id) if after else None
        docs = await self.outbox.page(status, channels, limit + 1, before)
        more = len(docs) > limit
        docs = docs[:limit]
        last = Position(docs[-1].created_at, docs[-1].id) if more else None
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
