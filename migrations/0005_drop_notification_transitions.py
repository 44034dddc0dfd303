"""Drop `notification_transitions`, the log of outbox state changes.

The log made claims atomic on FerretDB 1, whose updates were not. On MongoDB and on DocumentDB
(FerretDB 2) a claim is one compare-and-set on the document (storage/outbox/), and
nothing reads the log any more. Safe to re-run: a missing collection is left alone.
"""

from __future__ import annotations

from mailbox_service.migrate import MigrationContext

LOG = "notification_transitions"


async def up(ctx: MigrationContext) -> None:
    db = ctx.database.db
    if LOG in await db.list_collection_names():
        await db.drop_collection(LOG)
