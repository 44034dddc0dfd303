"""DocumentStore: the `documents` collection, the source of truth for every document.

Every read returns StoredDocument (or ListedDocument for an inbox page), decoded once per
record; every insert encodes one. Each method wraps exactly one query: no service sees the
collection, and none pays a round trip more than it did with it.

Notification state lives on the document itself (`notifications.<channel>`), which makes the
collection the outbox: the outbox module owns the claim and status updates.

Idempotency: (source, source_ref) is unique through one string field, `source_key`, with a
single-field unique index. A compound unique index on the pair is what MongoDB would suggest,
but on DocumentDB (the local and test engine) it builds in quadratic time and makes every
insert slower as the collection grows; a single-field unique key stays flat (figures in
docs/architecture.md, "Idempotency"). `_id` stays a random id because it appears in URLs and
blob keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mailbox_service.errors import ServiceError
from mailbox_service.storage.inbox import (
    SORT,
    UNREAD_ROWS_BATCH,
    InboxFilter,
    KeysetPosition,
    account_match,
    list_query,
    unread_pipeline,
)
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.stored_document import (
    LISTED_FIELDS,
    ListedDocument,
    StoredDocument,
    decode_document,
    decode_listed,
    encode_document,
)

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

    # --- writing new documents ------------------------------------------------------------

    async def insert(self, document: StoredDocument) -> None:
        await self.insert_record(encode_document(document))

    async def insert_record(self, record: Doc) -> None:
        """Insert an already encoded record (restores, and tests of the stored shape)."""
        try:
            await self._docs.insert_one(record)
        except DuplicateKeyError as exc:
            raise DuplicateSourceRef(str(exc)) from exc

    async def insert_many(self, documents: Sequence[StoredDocument]) -> dict[int, Doc]:
        """One unordered insert_many. Returns the write errors by position in `documents`
        (a duplicate source_key has `code` 11000); empty when all were stored. Any other
        failure (the connection lost midway) raises: the caller then asks `stored_ids`."""
        try:
            await self._docs.insert_many([encode_document(d) for d in documents], ordered=False)
        except BulkWriteError as exc:
            return {e["index"]: e for e in exc.details.get("writeErrors", [])}
        return {}

    async def stored_ids(self, document_ids: Sequence[str]) -> set[str]:
        """Which of `document_ids` exist (one query; settles a write that failed midway)."""
        found = self._docs.find(
            {"_id": {"$in": list(document_ids)}}, {"_id": 1}, batch_size=len(document_ids) + 1
        )
        return {str(record["_id"]) async for record in found}

    # --- reading ---------------------------------------------------------------------------

    async def find_by_source_ref(self, source: str, source_ref: str) -> StoredDocument | None:
        record = await self._docs.find_one({"source_key": source_key(source, source_ref)})
        return None if record is None else decode_document(record)

    async def find_by_source_refs(
        self, source: str, refs: Iterable[str]
    ) -> dict[str, StoredDocument]:
        """The stored documents of `source` among `refs`, by source_ref (one query)."""
        keys = sorted({source_key(source, ref) for ref in refs})
        if not keys:
            return {}
        found = one_batch(self._docs.find({"source_key": {"$in": keys}}), len(keys))
        documents = [decode_document(record) async for record in found]
        return {document.source_ref: document for document in documents}

    async def get(self, document_id: str) -> StoredDocument | None:
        record = await self._docs.find_one({"_id": document_id})
        return None if record is None else decode_document(record)

    async def get_for_accounts(
        self, document_id: str, accounts: Sequence[str]
    ) -> StoredDocument | None:
        """The document if it belongs to one of `accounts`, else None (callers answer 404)."""
        record = await self._docs.find_one(
            {"_id": document_id, "account_id": account_match(accounts)}
        )
        return None if record is None else decode_document(record)

    async def record(self, document_id: str) -> Doc | None:
        """The record exactly as stored, untyped: for what checks or exports the stored shape
        itself (the evidence bundle, tests). Services read `get`."""
        return await self._docs.find_one({"_id": document_id})

    async def has_blob_key(self, key: str) -> bool:
        """Whether a document owns the blob `key`. Every document's key is `blob_key` of its
        id, so only the document whose id ends the key can own it: a lookup by `_id`, and
        `blob.key` needs no index of its own (every index on `documents` is paid on every
        write on DocumentDB; migration 0006 dropped it)."""
        document_id = document_id_of_blob(key)
        found = await self._docs.find_one({"_id": document_id, "blob.key": key}, {"_id": 1})
        return found is not None

    async def has_unique_source_key(self) -> bool:
        """Whether the idempotency index (SOURCE_KEY_INDEX) exists, as migration 0004 made it."""
        indexes = await self._docs.index_information()
        wanted = [(k, int(d)) for k, d in SOURCE_KEY_INDEX.document["key"].items()]
        return any(
            info.get("unique") and [(k, int(d)) for k, d in info["key"]] == wanted
            for info in indexes.values()
        )

    # --- the portal inbox ------------------------------------------------------------------

    async def page(
        self,
        accounts: Sequence[str],
        filters: InboxFilter,
        after: KeysetPosition | None,
        n: int,
    ) -> list[ListedDocument]:
        """At most `n` list items of `accounts` after `after`, newest first, in one batch."""
        found = self._docs.find(list_query(accounts, filters, after), LISTED_FIELDS)
        records = await one_batch(found.sort(SORT), n).to_list()
        return [decode_listed(record) for record in records]

    async def unread_counts(self, accounts: Sequence[str]) -> list[tuple[str, str, int]]:
        """(account, type, unread and not archived) for every pair that has any."""
        rows = await self._docs.aggregate(unread_pipeline(accounts), batchSize=UNREAD_ROWS_BATCH)
        return [(row["_id"]["account"], row["_id"]["type"], int(row["n"])) async for row in rows]

    # --- the customer's state: compare-and-set, one round trip each ------------------------

    async def set_read(
        self, document_id: str, accounts: Sequence[str], *, read: bool, at: dt.datetime
    ) -> StoredDocument | None:
        """Mark read (keeping the first read in `first_read_at`) or unread, if the document
        of `accounts` is not in that state yet. The document after the change; None when
        nothing changed (no such document, or already so)."""
        if read:
            when: Doc = {"read_at": None}
            update: Doc = {"$set": {"read_at": at}, "$min": {"first_read_at": at}}
        else:
            when = {"read_at": {"$ne": None}}
            update = {"$set": {"read_at": None}}
        return await self._change(document_id, accounts, when, update)

    async def set_archived(
        self, document_id: str, accounts: Sequence[str], *, archived: bool, at: dt.datetime
    ) -> StoredDocument | None:
        """Archive or unarchive, if not so yet; as `set_read`."""
        if archived:
            when: Doc = {"archived_at": None}
            update: Doc = {"$set": {"archived_at": at}}
        else:
            when = {"archived_at": {"$ne": None}}
            update = {"$set": {"archived_at": None}}
        return await self._change(document_id, accounts, when, update)

    async def record_first_download(self, document_id: str, at: dt.datetime) -> bool:
        """Set `first_downloaded_at` unless already set; whether this call set it."""
        done = await self._docs.update_one(
            {"_id": document_id, "first_downloaded_at": None},
            {"$set": {"first_downloaded_at": at}},
        )
        return bool(done.modified_count)

    async def _change(
        self, document_id: str, accounts: Sequence[str], when: Doc, update: Doc
    ) -> StoredDocument | None:
        record = await self._docs.find_one_and_update(
            {"_id": document_id, "account_id": account_match(accounts), **when},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if record is None else decode_document(record)
