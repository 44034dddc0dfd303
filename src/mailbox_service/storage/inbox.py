"""The queries of the portal inbox: a keyset page of an account's documents and the unread
counts, exactly as DocumentStore sends them (public, so the benchmark and the index-coverage
tests send the same).

Lists are newest first by (issued_at, _id) and paged by keyset: a page starts strictly after
the last item of the previous one (a `$nor` filter, `keyset_after`), so documents arriving
meanwhile neither repeat nor shift items, and on DocumentDB page 50 reads what page 1 reads.
Every shape here is served by an index (migrations/0002_mailbox_indexes.py):
tests/integration/mailbox/test_mailbox_indexes.py explains what they send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from pymongo import DESCENDING

from mailbox_service.storage.mongo import Doc

SORT: list[tuple[str, int]] = [("issued_at", DESCENDING), ("_id", DESCENDING)]
UNREAD_ROWS_BATCH = 10_000
"""First batch of the unread count: one row per (account, type) with unread documents, so the
answer comes in one reply (the default, 101 rows, is 34 accounts of three types)."""


class InboxFilter(Protocol):
    """What narrows a list (the portal's ListFilters has these attributes)."""

    @property
    def type(self) -> str | None: ...
    @property
    def unread(self) -> bool | None: ...
    @property
    def archived(self) -> bool: ...
    @property
    def issued_from(self) -> dt.datetime | None: ...
    @property
    def issued_to(self) -> dt.datetime | None: ...


class KeysetPosition(Protocol):
    """The last item of the previous page (the portal's signed cursor carries it)."""

    @property
    def sort_time(self) -> dt.datetime: ...
    @property
    def id(self) -> str: ...


def account_match(accounts: Sequence[str]) -> Any:
    # A plain equality for one account, the common case; `$in` for several. Both bound the
    # index scan on MongoDB and on DocumentDB (tests/integration/mailbox/test_mailbox_indexes.py).
    return accounts[0] if len(accounts) == 1 else {"$in": list(accounts)}


def list_query(accounts: Sequence[str], filters: InboxFilter, after: KeysetPosition | None) -> Doc:
    """The MongoDB filter of one list page (sorted by SORT)."""
    query: Doc = {
        "account_id": account_match(accounts),
        "archived_at": {"$ne": None} if filters.archived else None,
    }
    if filters.type is not None:
        query["type"] = filters.type
    if filters.unread is not None:
        query["read_at"] = None if filters.unread else {"$ne": None}
    issued: Doc = {}
    if filters.issued_from is not None:
        issued["$gte"] = filters.issued_from
    if filters.issued_to is not None:
        issued["$lt"] = filters.issued_to
    if after is not None:
        query["$nor"] = keyset_after(after)
    if issued:
        query["issued_at"] = issued
    return query


def keyset_after(after: KeysetPosition) -> list[Doc]:
    """`$nor` operands: the items strictly after `after` in (issued_at, _id) descending order.

    Not (issued later, or issued at the same millisecond with an `_id` not below the cursor's).
    A negation, on purpose: it is a filter, never an index bound. On DocumentDB any `issued_at`
    range in the index condition (`$lte`, `$lt`, `$not: {$gt}`, or `$or` branches with them)
    makes the composite index scan walk every entry of the whole collection in that range, not
    only the account's, and spill it to a temp sort: page 21 cost 2-3x page 1 at 100,000
    documents and 30x at 1,000,000. With only the equalities in the index condition, it reads
    the account's inbox and filters it, exactly what the first page reads (docs/api.md,
    Indexes). On MongoDB the index walk stays in sort order and the filter runs on the index
    keys; it steps over the earlier pages' keys instead of seeking past them.
    """
    return [
        {"issued_at": {"$gt": after.sort_time}},
        {"issued_at": after.sort_time, "_id": {"$gte": after.id}},
    ]


def unread_pipeline(accounts: Sequence[str]) -> list[Doc]:
    return [
        {"$match": {"account_id": account_match(accounts), "archived_at": None, "read_at": None}},
        {"$group": {"_id": {"account": "$account_id", "type": "$type"}, "n": {"$sum": 1}}},
    ]
