"""Index of the acknowledgement pass (senders/acknowledgement.py).

The pass looks for documents of a type that requires acknowledgement, never opened
(`first_read_at` unset), still digital, stored before a cutoff: equalities on (type,
first_read_at, delivery.mode), then the `created_at` range. A plain compound index (no partial
filter: a filter on null is not portable between MongoDB and DocumentDB). Bounces need no
index: they find their document by `_id` (a Message-ID of ours contains it). Safe to re-run.
"""

from __future__ import annotations

from mailbox_service.migrate import MigrationContext
from mailbox_service.storage.document_status import ACKNOWLEDGEMENT_INDEX


async def up(ctx: MigrationContext) -> None:
    await ctx.database.documents.create_indexes([ACKNOWLEDGEMENT_INDEX])
