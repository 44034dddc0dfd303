"""The worker's daily purge: one worker at a time, at most once per interval, across restarts.

A lease document in `leases` (`{_id: "retention.purge", holder, until, done_at}`) decides who
runs: a worker claims it only when no lease is live (`until` passed) and the last run finished
more than one interval ago (`done_at`). Two workers racing for it both try one atomic
update-or-insert; the loser hits the unique `_id` and skips. The schedule survives restarts
because `done_at` is stored, not remembered. A worker that dies mid-run leaves a lease that
expires after MAILBOX_RETENTION_LEASE_S; the purge is safe to resume (retention.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import threading

from pymongo.errors import DuplicateKeyError

from mailbox_service.audit import OPERATOR, AuditChain, AuditTrail
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.lifecycle.retention import PurgeReport, RetentionPurge
from mailbox_service.log import get_logger
from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.mongo import Collections, connect, utcnow

log = get_logger(__name__)

LEASE_ID = "retention.purge"
CHECK_EVERY_S = 60.0


class PurgeLease:
    def __init__(self, collections: Collections, lease_s: float, interval_s: float) -> None:
        self._leases = collections.leases
        self._lease = dt.timedelta(seconds=lease_s)
        self._interval = dt.timedelta(seconds=interval_s)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    async def claim(self) -> bool:
        """True when this process may run the purge now."""
        now = utcnow()
        try:
            await self._leases.update_one(
                {
                    "_id": LEASE_ID,
                    "until": {"$lt": now},
                    "done_at": {"$lt": now - self._interval},
                },
                {"$set": {"holder": self.holder, "until": now + self._lease}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        found = await self._leases.find_one({"_id": LEASE_ID})
        return found is not None and found.get("holder") == self.holder

    async def finish(self) -> None:
        now = utcnow()
        await self._leases.update_one(
            {"_id": LEASE_ID, "holder": self.holder}, {"$set": {"until": now, "done_at": now}}
        )


async def purge_if_due(settings: Settings, registry: DocumentTypeRegistry) -> PurgeReport | None:
    """Run the purge when this process wins the lease and a run is due; else None."""
    client = connect(settings.mongo)
    try:
        collections = Collections.of(client, settings.mongo.database)
        retention = settings.retention
        lease = PurgeLease(collections, retention.lease_s, retention.purge_interval_s)
        # A first run has no lease document: "done_at" must exist for the claim to match.
        await collections.leases.update_one(
            {"_id": LEASE_ID},
            {
                "$setOnInsert": {
                    "until": dt.datetime.min.replace(tzinfo=dt.UTC),
                    "done_at": dt.datetime.min.replace(tzinfo=dt.UTC),
                }
            },
            upsert=True,
        )
        if not await lease.claim():
            return None
        purge = RetentionPurge(
            collections, BlobStore(settings.s3), registry, batch_size=retention.batch_size
        )
        at = utcnow()
        report = await purge.run(at)
        await lease.finish()
        trail = AuditTrail(AuditChain(collections), settings.audit)
        await trail.record(
            "retention.purged",
            OPERATOR,
            details={
                "at": at.isoformat(),
                "by": "worker",
                "purged": dict(report.purged),
                "blobs_failed": report.blobs_failed,
            },
        )
        await trail.close()
        return report
    finally:
        await client.close()


class PurgeThread(threading.Thread):
    """Checks every minute whether the daily purge is due (see PurgeLease)."""

    def __init__(self, settings: Settings, registry: DocumentTypeRegistry) -> None:
        super().__init__(name="retention-purge", daemon=True)
        self._settings = settings
        self._registry = registry
        self._stop_event = threading.Event()
        self.runs = 0

    def run(self) -> None:
        every = min(CHECK_EVERY_S, self._settings.retention.purge_interval_s)
        while not self._stop_event.is_set():
            try:
                report = asyncio.run(purge_if_due(self._settings, self._registry))
                if report is not None:
                    self.runs += 1
            except Exception as exc:  # the next check tries again
                log.error("retention.purge_failed", error=f"{type(exc).__name__}: {exc}")
            self._stop_event.wait(every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)
