"""Indexes of the audit trail (`audit`; `audit_heads` needs only its `_id`).

`GET /v1/admin/audit` and `mailbox-service audit` sort newest first by (at, _id) and filter on
at most these fields: account_id, document_id, actor_id, action (equalities) and since (a
range on `at`). One index per equality field, followed by the sort keys, serves each filter
alone in sort order; with several filters the query is served by one of them and the others
are checked on the rows it reads. `audit_time` serves no filter (and `since` alone).
`audit verify` reads a day's chain by `_id` (`<day>:<seq>`), which sorts in chain order: no
index of its own, and no compound unique index (slow on DocumentDB) is needed for (day, seq),
because `_id` already is that pair. Safe to re-run: create_indexes leaves existing ones alone.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from mailbox_service.migrate import MigrationContext

SORT_KEYS = [("at", DESCENDING), ("_id", DESCENDING)]

AUDIT_INDEXES = [
    IndexModel(SORT_KEYS, name="audit_time"),
    *(
        IndexModel([(name, ASCENDING), *SORT_KEYS], name=f"audit_{name}")
        for name in ("account_id", "document_id", "actor_id", "action")
    ),
]


async def up(ctx: MigrationContext) -> None:
    await ctx.database.audit.create_indexes(AUDIT_INDEXES)
