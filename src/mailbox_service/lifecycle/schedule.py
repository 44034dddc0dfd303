"""The worker's daily purge: one worker at a time, at most once per interval, across restarts.

The run lease `retention.purge` (storage/leases.py) decides who runs: one worker at a time,
once per MAILBOX_RETENTION_PURGE_INTERVAL_S, whichever restarts. A worker that dies mid-run
leaves a lease that expires after MAILBOX_RETENTION_LEASE_S; the purge is safe to resume
(retention.py).
"""

from __future__ import annotations

import asyncio

from mailbox_service.audit import OPERATOR, AuditChain, AuditTrail
from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.lifecycle.retention import PurgeReport, RetentionPurge
from mailbox_service.log import get_logger
from mailbox_service.periodic import PeriodicThread
from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.leases import RunLease
from mailbox_service.storage.mongo import Collections, connect

log = get_logger(__name__)

LEASE_ID = "retention.purge"
CHECK_EVERY_S = 60.0


class PurgeLease(RunLease):
    def __init__(self, collections: Collections, lease_s: float, interval_s: float) -> None:
        super().__init__(collections, LEASE_ID, lease_s, interval_s)


async def purge_if_due(settings: Settings, registry: DocumentTypeRegistry) -> PurgeReport | None:
    """Run the purge when this process wins the lease and a run is due; else None."""
    client = connect(settings.mongo)
    try:
        collections = Collections.of(client, settings.mongo.database)
        retention = settings.retention
        lease = PurgeLease(collections, retention.lease_s, retention.purge_interval_s)
        await lease.prepare()
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


def purge_thread(settings: Settings, registry: DocumentTypeRegistry) -> PeriodicThread:
    """Checks every minute whether the daily purge is due (see PurgeLease)."""
    return PeriodicThread(
        "retention-purge",
        min(CHECK_EVERY_S, settings.retention.purge_interval_s),
        lambda: asyncio.run(purge_if_due(settings, registry)),
        failure_event="retention.purge_failed",
        first_run_at_once=True,
    )
