"""Retention and write-once files: the purge's `retain_until` index, and object locking.

The purge reads expired documents through an index on `retain_until` alone: a range on one
field, read in order. (A compound index led by `account_id` would not serve it.)

S3 Object Lock can only be switched on when a bucket is created. A missing bucket is created
with it; an existing bucket without it is reported in one line and left as it is: documents
are then stored without locks until the files are moved to a new bucket
(docs/operations.md, "Write-once files").
"""

from __future__ import annotations

import anyio.to_thread
from pymongo import ASCENDING, IndexModel

from mailbox_service.log import get_logger
from mailbox_service.migrate import MigrationContext

log = get_logger(__name__)


async def up(ctx: MigrationContext) -> None:
    await ctx.database.documents.create_indexes(
        [IndexModel([("retain_until", ASCENDING)], name="retain_until_purge")]
    )
    blobs = ctx.blobs
    client = blobs.client
    if not await anyio.to_thread.run_sync(client.bucket_exists, blobs.bucket):
        await anyio.to_thread.run_sync(lambda: client.make_bucket(blobs.bucket, object_lock=True))
        return
    if not await blobs.object_lock_enabled():
        log.warning(
            "bucket.object_lock_missing",
            bucket=blobs.bucket,
            message=(
                f"bucket {blobs.bucket!r} was created without object locking: write-once "
                "files are stored unlocked; create a new bucket with locking, copy the files "
                "over and point MAILBOX_S3_BUCKET at it (docs/operations.md)"
            ),
        )
