"""Indexes behind every portal list query and the unread count.

Each list query is: account (equality, or `$in` for several) + archive state + optional type +
optional read state, sorted by issued_at then _id, newest first, with an optional issued_at
range and keyset position. One index per combination of optional equality fields keeps every
equality in front of the sort keys, so MongoDB walks the index in order and stops after one
page (no in-memory SORT). FerretDB has no partial indexes, so the "not archived" condition is
an indexed field (`archived_at` null) rather than a partial filter.

`archived=true` and `unread=false` are ranges (`$ne: null`) on the state field: the index still
bounds the scan to the account's archived (or read) documents, but MongoDB sorts those.

The unread count matches (account, archived_at null, read_at null) and groups by account and
type: the first three keys of `mailbox_unread` are exactly its equality prefix.
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
    await ctx.collections.documents.create_indexes(MAILBOX_INDEXES)
