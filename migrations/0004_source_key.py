r"""(source, source_ref) is unique through one field, `source_key`, not a compound index.

Why: on DocumentDB (FerretDB 2.5, the local and test engine) a compound *unique* index gets
slower as the collection grows: building `source_ref_unique` took 733 s at 200,000 documents,
and every insert checks it (131 inserts/s at that size). A single-field unique index on
`"<source>\x1f<source_ref>"` keeps inserts flat; MongoDB serves either equally well.
Figures: docs/architecture.md, "Idempotency"; `bench/unique_key.py` measures them.

Steps, each safe to re-run after a crash (there are no transactions):
1. the compound `source_ref_unique` is dropped first: on DocumentDB every write to a document
   re-checks a compound unique index, even a write that leaves its fields alone; with it in
   place 2,000 of step 2's updates took 7.8 s at 10,000 documents, without it 0.2 s;
2. every document without `source_key` gets it, walking `_id` in order, in bulk writes of at
   most 25,000 updates (DocumentDB refuses larger write batches);
3. the unique index `source_key_unique` is created. Nothing writes documents meanwhile (see
   "Deploying"), so uniqueness cannot be broken while no index holds it; had it been, this
   step fails with E11000 naming the key, and re-running after fixing the data finishes.

Append-only: 0001 still creates `source_ref_unique` and this migration drops it. On a new
database that costs nothing (the collection is empty when 0001 runs), and an applied migration
never changes, so every database, new or old, reaches the same schema by the same steps.

Deploying: stop what writes documents (API nodes, backfills), run `mailbox-service migrate`
with this version, then start it. An older version writes documents without `source_key`
(a second one collides on the missing key), and this version finds a stored document only by
its key.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, UpdateOne

from mailbox_service.migrate import MigrationContext
from mailbox_service.storage.documents import SOURCE_KEY_INDEX, one_batch, source_key

WRITE_BATCH = 25_000
"""Updates per bulk write: DocumentDB's limit ("Write batch sizes must be between 1 and 25000")."""

OLD_INDEX = "source_ref_unique"


async def add_source_keys(documents: Any, batch: int = WRITE_BATCH) -> int:
    """Set `source_key` on every document that lacks it; returns how many were updated."""
    missing: dict[str, Any] = {"source_key": {"$exists": False}}
    after: str | None = None
    updated = 0
    while True:
        query = missing if after is None else {**missing, "_id": {"$gt": after}}
        # One reply per page; were it cut short at 16 MiB, the next page simply starts after
        # the last document received.
        found = documents.find(query, {"source": 1, "source_ref": 1}).sort("_id", ASCENDING)
        page = await one_batch(found, batch).to_list()
        if not page:
            return updated
        result = await documents.bulk_write(
            [
                UpdateOne(
                    {"_id": doc["_id"], "source_key": {"$exists": False}},
                    {"$set": {"source_key": source_key(doc["source"], doc["source_ref"])}},
                )
                for doc in page
            ],
            ordered=False,
        )
        updated += result.modified_count
        after = page[-1]["_id"]


async def up(ctx: MigrationContext) -> None:
    documents = ctx.database.documents
    if OLD_INDEX in await documents.index_information():
        await documents.drop_index(OLD_INDEX)
    await add_source_keys(documents)
    await documents.create_indexes([SOURCE_KEY_INDEX])
