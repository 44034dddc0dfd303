"""Removes blobs that no document owns: left behind by a crash between the blob and
metadata writes. Only blobs older than a grace period are touched, so an upload whose
metadata insert is still in flight is never taken for an orphan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import anyio.to_thread

from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger
from mailbox_service.storage.blobs import BlobInfo, BlobStore, DeleteRefused
from mailbox_service.storage.documents import DocumentStore

log = get_logger(__name__)


@dataclass(frozen=True)
class OrphanReport:
    examined: int
    removed: list[str]


async def sweep_orphans(
    blobs: BlobStore, documents: DocumentStore, grace: dt.timedelta, *, dry_run: bool = False
) -> OrphanReport:
    cutoff = utcnow() - grace
    candidates: list[BlobInfo] = await anyio.to_thread.run_sync(
        lambda: list(blobs.iter_older_than(cutoff))
    )
    removed: list[str] = []
    for blob in candidates:
        if await documents.has_blob_key(blob.key):
            continue
        if not dry_run:
            try:
                await blobs.delete(blob.key)
            except DeleteRefused as exc:  # a lock outlives its document: leave it, say so
                log.error("blob.orphan_locked", key=blob.key, error=str(exc))
                continue
        removed.append(blob.key)
        log.info("blob.orphan_removed", key=blob.key, size=blob.size, dry_run=dry_run)
    return OrphanReport(len(candidates), removed)
