"""Indexes of `sender_events` (senders/events.py).

The change feed reads one source's events in `_id` order after a cursor: (source, _id). The
webhook sweep looks for events not yet fanned out, oldest first: (dispatched, _id); it is not
partial, because the sweep's condition (`dispatched: false`) must be served by an equality on
the index's first key. Both are plain (non-unique) compound indexes, which stay fast on
DocumentDB (a compound unique index does not). Safe to re-run.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from mailbox_service.migrate import MigrationContext

SENDER_EVENT_INDEXES = [
    IndexModel([("source", ASCENDING), ("_id", ASCENDING)], name="sender_events_feed"),
    IndexModel([("dispatched", ASCENDING), ("_id", ASCENDING)], name="sender_events_undispatched"),
]


async def up(ctx: MigrationContext) -> None:
    await ctx.database.sender_events.create_indexes(SENDER_EVENT_INDEXES)
