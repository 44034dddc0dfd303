"""The `sender_events` collection: what happened to each document, for its sender.

What an event means, and who writes and reads it, is senders/events.py. This module holds the
stored side: the insert, the change feed's page (index `sender_events_feed`: source, _id) and
the webhook dispatcher's reads and its `dispatched` flag. `SenderEventStore` is async (API,
CLI), `BlockingSenderEventStore` sync (worker threads); both build their filters with the
functions below, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.database import Database

from mailbox_service.storage.documents import one_batch
from mailbox_service.storage.mongo import Collections, Doc

COLLECTION = "sender_events"
FEED_INDEX = "sender_events_feed"


def feed_query(source: str, after: ObjectId | None, bound: ObjectId) -> Doc:
    """Events of `source` after `after` and before the settle `bound`."""
    ids: Doc = {"$lt": bound}
    if after is not None:
        ids["$gt"] = after
    return {"source": source, "_id": ids}


def undispatched_before(cutoff: ObjectId) -> Doc:
    """Events whose dispatch has not happened and whose id is older than `cutoff`."""
    return {"dispatched": False, "_id": {"$lt": cutoff}}


class SenderEventStore:
    """Async: the API and the CLI."""

    def __init__(self, collections: Collections) -> None:
        self._events = collections.sender_events

    async def insert(self, event: Doc) -> None:
        await self._events.insert_one(event)

    async def feed_page(
        self, source: str, after: ObjectId | None, bound: ObjectId, limit: int
    ) -> list[Doc]:
        """At most `limit` events of `source` in (after, bound), oldest first, in one batch."""
        found = (
            self._events.find(feed_query(source, after, bound))
            .sort("_id", ASCENDING)
            # Both engines could also walk `_id` and filter by source: slow for a quiet source.
            .hint(FEED_INDEX)
        )
        return await one_batch(found, limit).to_list()


class BlockingSenderEventStore:
    """Sync: the worker's threads (email outcomes, webhook dispatch and sweep)."""

    def __init__(self, db: Database[Doc]) -> None:
        self._events = db[COLLECTION]

    def insert(self, event: Doc) -> None:
        self._events.insert_one(event)

    def get(self, object_id: ObjectId) -> Doc | None:
        found: Doc | None = self._events.find_one({"_id": object_id})
        return found

    def mark_dispatched(self, object_id: ObjectId) -> None:
        self._events.update_one({"_id": object_id}, {"$set": {"dispatched": True}})

    def undispatched_ids(self, cutoff: ObjectId, limit: int) -> Iterator[ObjectId]:
        """Ids of at most `limit` events not dispatched and older than `cutoff`, oldest first
        (read as the caller goes: it may stop early)."""
        found = self._events.find(
            undispatched_before(cutoff), {"_id": 1}, sort=[("_id", ASCENDING)], limit=limit
        )
        for event in found:
            yield event["_id"]
