"""Indexes of the notification outbox: per-channel status, creation day, transition log age.

The worker also ensures the outbox indexes at start-up (for deployments that run a worker
before `migrate`); this migration makes them part of the recorded schema. The outbox module
owns their definition (storage/outbox/indexes.py). The index on the old transition log stays,
so that every database reaches the same schema by the same steps; 0005 drops the log.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from mailbox_service.migrate import MigrationContext
from mailbox_service.storage.outbox import OUTBOX_INDEXES

TRANSITION_LOG = "notification_transitions"


async def up(ctx: MigrationContext) -> None:
    await ctx.database.documents.create_indexes(OUTBOX_INDEXES)
    await ctx.database.db[TRANSITION_LOG].create_indexes(
        [IndexModel([("at", ASCENDING)], name="transition_at")]
    )
