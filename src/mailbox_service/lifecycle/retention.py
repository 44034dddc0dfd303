"""Retention purge: delete documents whose `retain_until` has passed, never one under hold.

Order per page: tombstones, then metadata, then blobs. A crash after the metadata leaves at most
orphan blobs, which the orphan sweep removes; a crash before it leaves tombstones beside live
documents, which the next run rewrites and deletes. A hold set while a page is in flight wins:
the delete re-checks holds, and whatever survived it keeps its blob and loses its tombstone.

Paging: every page is "the first `batch_size` expired, unheld documents by `retain_until`",
read through the `retain_until` index (migration 0008) in one batch. Each page deletes what it
read, so the next page starts from the front again: no cursor to keep, no `skip`.

Write-once files: MinIO enforces their lock on its own clock, so a run with `--at` in the
future never deletes a document of an `immutable_files` type whose `retain_until` is still
ahead in real time (its blob could not be removed): those are counted as `locked`. The purge
never bypasses a GOVERNANCE lock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.log import get_logger
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.document_lifecycle import DocumentLifecycleStore
from mailbox_service.storage.holds import HoldStore, document_hold
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.tombstones import TombstoneStore

log = get_logger(__name__)

BLOB_DELETES_AT_ONCE = 16


@dataclass
class PurgePlan:
    """What a purge at `at` would do, per type (the dry run and the confirmation prompt)."""

    at: dt.datetime
    purge: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    locked: Counter[str] = field(default_factory=Counter)
    """Expired at `at`, but their write-once file is locked until a real time still ahead."""


@dataclass
class PurgeReport:
    at: dt.datetime
    purged: Counter[str] = field(default_factory=Counter)
    blobs_failed: int = 0
    """Blobs that could not be removed (left to the orphan sweep; see the log)."""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.purged.values())


class RetentionPurge:
    def __init__(
        self,
        collections: Collections,
        blobs: BlobStore,
        registry: DocumentTypeRegistry,
        *,
        batch_size: int = 500,
    ) -> None:
        self._documents = DocumentLifecycleStore(collections)
        self._blobs = blobs
        self._holds = HoldStore(collections)
        self._tombstones = TombstoneStore(collections)
        self._immutable = sorted(t.name for t in registry if t.immutable_files)
        self._batch_size = batch_size

    def _passes(self, at: dt.datetime) -> list[tuple[Doc, dt.datetime]]:
        """(type filter, cutoff) pairs: write-once types stop at the real clock."""
        now = utcnow()
        return [
            ({"type": {"$nin": self._immutable}}, at),
            ({"type": {"$in": self._immutable}}, min(at, now)),
        ]

    async def plan(self, at: dt.datetime) -> PurgePlan:
        plan = PurgePlan(at)
        held_accounts = set(await self._holds.held_accounts())
        now = utcnow()
        async for doc in self._documents.expired(at):
            kind = doc["type"]
            if document_hold(doc) is not None or doc["account_id"] in held_accounts:
                plan.held[kind] += 1
            elif kind in self._immutable and doc["retain_until"] > now:
                plan.locked[kind] += 1
            else:
                plan.purge[kind] += 1
        return plan

    async def run(
        self, at: dt.datetime, on_page: Callable[[PurgeReport], None] | None = None
    ) -> PurgeReport:
        report = PurgeReport(at)
        started = time.perf_counter()
        for type_filter, cutoff in self._passes(at):
            while True:
                held_accounts = await self._holds.held_accounts()
                page = await self._documents.purge_page(
                    cutoff, type_filter, held_accounts, self._batch_size
                )
                if not page:
                    break
                await self._purge_page(page, report)
                if on_page:
                    on_page(report)
        report.seconds = time.perf_counter() - started
        log.info(
            "retention.purged",
            at=at.isoformat(),
            purged=dict(report.purged),
            blobs_failed=report.blobs_failed,
            seconds=round(report.seconds, 3),
        )
        return report

    async def _purge_page(self, page: list[Doc], report: PurgeReport) -> None:
        ids = [doc["_id"] for doc in page]
        await self._tombstones.write(page, "retention", utcnow())
        # Holds are checked again at the delete itself: one set since the read wins.
        held_accounts = await self._holds.held_accounts()
        deleted = await self._documents.delete_unheld(ids, held_accounts)
        gone = page
        if deleted < len(ids):
            survivors = await self._documents.remaining(ids)
            await self._tombstones.remove(sorted(survivors))
            gone = [doc for doc in page if doc["_id"] not in survivors]
        for doc in gone:
            report.purged[doc["type"]] += 1
        await self._delete_blobs([doc["blob"] for doc in gone], report)

    async def _delete_blobs(self, blobs: list[Doc], report: PurgeReport) -> None:
        """Blobs whose version the ingest recorded go in bulk requests; the rest (stored
        before versions were recorded, or in a bucket without versioning) one by one. A
        failure only logs: the metadata is gone, so the orphan sweep removes the blob later
        (as it does any other version left under the key)."""
        versioned = [(b["key"], b["version_id"]) for b in blobs if b.get("version_id")]
        if versioned:
            try:
                refused = await self._blobs.delete_versions(versioned)
            except Exception as exc:
                refused = [key for key, _ in versioned]
                log.warning("retention.blob_delete_failed", count=len(refused), error=str(exc))
            for key in refused:
                log.warning("retention.blob_delete_refused", key=key)
            report.blobs_failed += len(refused)
        limiter = anyio.CapacityLimiter(BLOB_DELETES_AT_ONCE)

        async def delete(key: str) -> None:
            async with limiter:
                try:
                    await self._blobs.delete(key)
                except Exception as exc:  # metadata is gone: the orphan sweep retries it
                    report.blobs_failed += 1
                    log.warning("retention.blob_delete_failed", key=key, error=str(exc))

        async with anyio.create_task_group() as tg:
            for blob in blobs:
                if not blob.get("version_id"):
                    tg.start_soon(delete, blob["key"])
