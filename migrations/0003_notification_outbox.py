"""Indexes of the notification outbox: per-channel status, creation day, transition log age.

The worker also ensures them at start-up (for deployments that run a worker before
`migrate`); this migration makes them part of the recorded schema.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from mailbox_service.migrate import MigrationContext
from mailbox_service.notifications.outbox import TRANSITIONS
from mailbox_service.notifications.worker import OUTBOX_INDEXES


async def up(ctx: MigrationContext) -> None:
    await ctx.collections.documents.create_indexes(OUTBOX_INDEXES)
    await ctx.collections.db[TRANSITIONS].create_indexes(
        [IndexModel([("at", ASCENDING)], name="transition_at")]
    )
