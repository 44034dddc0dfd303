"""Collections, the ingestion and outbox indexes, and the documents bucket."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from mailbox_service.migrate import MigrationContext


async def up(ctx: MigrationContext) -> None:
    db = ctx.database.db
    existing = set(await db.list_collection_names())
    for name in ("documents", "accounts", "api_keys"):
        if name not in existing:
            await db.create_collection(name)

    await ctx.database.documents.create_indexes(
        [
            # Idempotency: one document per sender reference.
            IndexModel(
                [("source", ASCENDING), ("source_ref", ASCENDING)],
                unique=True,
                name="source_ref_unique",
            ),
            # The orphan sweep asks "does any document own this blob?".
            IndexModel([("blob.key", ASCENDING)], name="blob_key"),
        ]
    )
    await ctx.database.api_keys.create_indexes(
        [IndexModel([("hash", ASCENDING)], unique=True, name="hash_unique")]
    )
    await ctx.blobs.ensure_bucket()
