"""Indexes behind every portal list query and the unread count.

Each list query is: account (equality, or `$in` for several) + archive state + optional type +
optional read state, sorted by issued_at then _id, newest first, with an optional issued_at
range and keyset position. One index per combination of optional equality fields keeps every
equality in front of the sort keys, so MongoDB walks the index in order and stops after one
page (no in-memory SORT). The "not archived" and "unread" conditions are indexed fields
(`archived_at` / `read_at` null), so one index serves both states of each.

`archived=true` and `unread=false` are ranges (`$ne: null`) on the state field: the index still
bounds the scan to the account's archived (or read) documents, but MongoDB sorts those.

The unread count matches (account, archived_at null, read_at null) and groups by account and
type: the first three keys of `mailbox_unread` are exactly its equality prefix.

Partial indexes: written when FerretDB 1 had none; DocumentDB (FerretDB 2) and MongoDB both
have them now, and they change nothing here. On DocumentDB the planner reads
`mailbox_type_unread` for every list shape (its composite index serves any subset of its
fields) and sorts in PostgreSQL whichever index it reads, so a partial "inbox" index would
give the same plan; on MongoDB a partial index serves only queries that repeat its filter and
would only leave the archived documents out. tests/integration/mailbox/test_mailbox_indexes.py
checks the plan of every shape on the engine it runs on.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from mailbox_service.migrate import MigrationContext

SORT_KEYS = [("issued_at", DESCENDING), ("_id", DESCENDING)]

MAILBOX_INDEXES = [
    IndexModel(
        [("account_id", ASCENDING), ("archived_at", ASCENDING), *SORT_KEYS], name="mailbox_inbox"
    ),
    IndexModel(
        [("account_id", ASCENDING), ("archived_at", ASCENDING), ("read_at", ASCENDING), *SORT_KEYS],
        name="mailbox_unread",
    ),
    IndexModel(
        [("account_id", ASCENDING), ("archived_at", ASCENDING), ("type", ASCENDING), *SORT_KEYS],
        name="mailbox_type",
    ),
    IndexModel(
        [
            ("account_id", ASCENDING),
            ("archived_at", ASCENDING),
            ("type", ASCENDING),
            ("read_at", ASCENDING),
            *SORT_KEYS,
        ],
        name="mailbox_type_unread",
    ),
]


async def up(ctx: MigrationContext) -> None:
    await ctx.database.documents.create_indexes(MAILBOX_INDEXES)
