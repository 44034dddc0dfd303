"""Drop the `blob_key` index on `documents`.

Only the orphan sweep asked "does any document own this blob?", and a blob's key is made from
its document's id (`storage/documents.py: blob_key`), so the sweep now looks the id up by
`_id`. On DocumentDB every write to a document (the ingest insert and each outbox change)
re-indexes it in every index of the collection, so an index no query needs is paid on every
write. Safe to re-run: a missing index is left alone.
"""

from __future__ import annotations

from mailbox_service.migrate import MigrationContext

INDEX = "blob_key"


async def up(ctx: MigrationContext) -> None:
    documents = ctx.database.documents
    if INDEX in await documents.index_information():
        await documents.drop_index(INDEX)
