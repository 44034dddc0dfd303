"""DocumentStore: the `documents` collection, the source of truth for every document.

Notification state lives on the document itself (`notifications.<channel>`), which makes the
collection the outbox: see notifications/outbox.py for the claim and status updates.

Idempotency: (source, source_ref) is unique through one string field, `source_key`, with a
single-field unique index. A compound unique index on the pair is what MongoDB would suggest,
but on DocumentDB (the local and test engine) it builds in quadratic time and makes every
insert slower as the collection grows; a single-field unique key stays flat (figures in
docs/architecture.md, "Idempotency"). `_id` stays a random id because it appears in URLs and
blob keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import DuplicateKeyError

from mailbox_service.errors import ServiceError
from mailbox_service.storage.mongo import Collections, Doc

SOURCE_KEY_SEPARATOR = "\x1f"
"""ASCII unit separator: neither a source name nor a source_ref can contain it (both are
validated printable ASCII), so `source_key` is one-to-one with the pair."""

SOURCE_KEY_INDEX = IndexModel([("source_key", ASCENDING)], unique=True, name="source_key_unique")
"""Idempotency: one document per (source, source_ref). Created by migration 0004."""


class DuplicateSourceRef(ServiceError):
    """(source, source_ref) already exists: the caller decides between replay and conflict."""


def new_document_id() -> str:
    # Random, not time-ordered: ids reveal nothing about volume and never collide across nodes.
    return uuid.uuid4().hex


def blob_key(document_id: str) -> str:
    # A short hashed prefix spreads keys across MinIO's namespace.
    return f"documents/{document_id[:2]}/{document_id}"


def document_id_of_blob(key: str) -> str:
    """The id of the only document that can own the blob `key` (`blob_key` made it from it)."""
    return key.rpartition("/")[2]


def one_batch(cursor: AsyncCursor[Doc], n: int) -> AsyncCursor[Doc]:
    """At most `n` documents, all in the server's first reply, with no cursor left open.

    For every read whose answer is bounded (a page, a batch's lookups). DocumentDB runs a
    sorted find that may need a second batch as a persistent (held) PostgreSQL cursor, even
    when the first reply turns out to hold everything; asked for a single batch it runs a plain
    query: an account's page of 20 measured p99 20-25 ms the first way, 1.4 ms the second
    (vendor/README.md). The negative limit asks for one batch (`singleBatch`); the batch size
    makes that batch hold all `n`: without it both engines stop the single batch at their
    default of 101 documents and drop the rest. A reply also ends at 16 MiB, far above any
    page of ours.
    """
    return cursor.limit(-n).batch_size(n)


def source_key(source: str, source_ref: str) -> str:
    """The unique key of (source, source_ref), stored on every document as `source_key`."""
    return f"{source}{SOURCE_KEY_SEPARATOR}{source_ref}"


class DocumentStore:
    def __init__(self, collections: Collections) -> None:
        self._docs = collections.documents

    @property
    def collection(self) -> Any:
        return self._docs

    async def insert(self, document: Doc) -> None:
        try:
            await self._docs.insert_one(document)
        except DuplicateKeyError as exc:
            raise DuplicateSourceRef(str(exc)) from exc

    async def by_source_ref(self, source: str, source_ref: str) -> Doc | None:
        return await self._docs.find_one({"source_key": source_key(source, source_ref)})

    async def by_source_refs(self, source: str, refs: Iterable[str]) -> dict[str, Doc]:
        """The stored documents of `source` among `refs`, by source_ref (one query)."""
        keys = sorted({source_key(source, ref) for ref in refs})
        if not keys:
            return {}
        found = one_batch(self._docs.find({"source_key": {"$in": keys}}), len(keys))
        return {doc["source_ref"]: doc async for doc in found}

    async def get(self, document_id: str) -> Doc | None:
        return await self._docs.find_one({"_id": document_id})

    async def get_for_accounts(self, document_id: str, accounts: list[str]) -> Doc | None:
        """The document if it belongs to one of `accounts`, else None (callers answer 404)."""
        return await self._docs.find_one({"_id": document_id, "account_id": {"$in": accounts}})

    async def has_blob_key(self, key: str) -> bool:
        """Whether a document owns the blob `key`. Every document's key is `blob_key` of its
        id, so only the document whose id ends the key can own it: a lookup by `_id`, and
        `blob.key` needs no index of its own (every index on `documents` is paid on every
        write on DocumentDB; migration 0006 dropped it)."""
        document_id = document_id_of_blob(key)
        found = await self._docs.find_one({"_id": document_id, "blob.key": key}, {"_id": 1})
        return found is not None
