"""The `audit` and `audit_heads` collections: hash-chained entries, one head per UTC day.

What is chained and how: audit/chain.py; how the trail is read: audit/query.py. Entry ids
are `<day>:<seq>` (audit/entry.py), so one day's entries are the `_id` range [`day:`, `day;`)
(`;` follows `:` in ASCII). The indexes every read uses are migration 0007's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pymongo import DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mailbox_service.storage.documents import one_batch
from mailbox_service.storage.mongo import Collections, Doc

DUPLICATE_KEY = 11000
NEWEST_FIRST: list[tuple[str, int]] = [("at", DESCENDING), ("_id", DESCENDING)]


def day_range(day: str) -> Doc:
    """The `_id` range of one day's entries."""
    return {"$gte": f"{day}:", "$lt": f"{day};"}


class AuditLogStore:
    def __init__(self, collections: Collections) -> None:
        self._entries = collections.audit
        self._heads = collections.audit_heads

    # -- the day's head: the chain's compare-and-set ------------------------------------

    async def head(self, day: str) -> Doc | None:
        return await self._heads.find_one({"_id": day})

    async def start_day(self, day: str, head: Doc) -> bool:
        """Store the first head of `day`; False when another writer started the day first."""
        try:
            await self._heads.insert_one({"_id": day, **head})
        except DuplicateKeyError:
            return False
        return True

    async def move_head(self, day: str, seq: int, prev_hash: str, head: Doc) -> bool:
        """Move the head of `day` from (seq, prev_hash) to `head`; False when it moved on."""
        result = await self._heads.update_one(
            {"_id": day, "seq": seq, "hash": prev_hash}, {"$set": head}
        )
        return result.matched_count == 1

    # -- entries --------------------------------------------------------------------------

    async def insert(self, chained: list[Doc]) -> None:
        """Store chained entries; safe to repeat (an entry already stored is left alone)."""
        if not chained:
            return
        try:
            await self._entries.insert_many(chained, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise

    async def head_days(self) -> set[str]:
        """Every day with a head."""
        return {doc["_id"] async for doc in self._heads.find({}, {"_id": 1})}

    async def entry_id_bounds(self) -> tuple[str, str] | None:
        """The smallest and the largest entry id; None when there are no entries."""
        first = await self._entries.find_one({}, {"_id": 1}, sort=[("_id", 1)])
        last = await self._entries.find_one({}, {"_id": 1}, sort=[("_id", -1)])
        if first is None or last is None:
            return None
        return str(first["_id"]), str(last["_id"])

    async def has_entries_on(self, day: str) -> bool:
        return await self._entries.find_one({"_id": day_range(day)}, {"_id": 1}) is not None

    def entries_of(self, day: str, batch: int) -> AsyncIterator[Doc]:
        """One day's entries in `_id` (sequence) order."""
        return self._entries.find({"_id": day_range(day)}).sort("_id", 1).batch_size(batch)

    # -- reading the trail ----------------------------------------------------------------

    async def newest(self, query: Doc, n: int) -> list[Doc]:
        """At most `n` entries matching `query`, newest first, in one batch."""
        return await one_batch(self._entries.find(query).sort(NEWEST_FIRST), n).to_list()

    async def days_newest_first(self, low: str | None, high: str | None, n: int) -> list[str]:
        """The days with a head between `low` and `high` (ISO dates, inclusive, either open),
        newest first; at most `n`, in one batch."""
        days: Doc = {}
        if high is not None:
            days["$lte"] = high
        if low is not None:
            days["$gte"] = low
        found = self._heads.find({"_id": days} if days else {}, {"_id": 1}).sort("_id", -1)
        return [str(head["_id"]) for head in await one_batch(found, n).to_list()]
