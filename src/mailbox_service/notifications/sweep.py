"""The outbox sweep: no document silently misses its notification.

Redis is only a courier. A job can be lost between the MongoDB write and the queue (Redis down
at ingestion), in Redis (restart without persistence), or in a worker (killed mid-job). In every
case the outbox still says `pending` or `sending`, so the worker periodically looks for

- `pending` overdue by more than `notify.sweep_grace_s` (and not waiting for a later retry),
- `sending` whose lease expired (its worker died or stalled),

and enqueues them again. The worker's claim does the rest: it takes over an expired lease, or
marks the channel `failed` once its attempts are used up. Re-enqueueing a job that was not lost
after all is harmless: the claim is a compare-and-set on the document and lets only one
through. A job re-enqueued by this sweep is not re-enqueued again within the grace period
(remembered in memory: after a restart, at most one extra duplicate).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import CHANNELS, Channel
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.periodic import PeriodicThread
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.outbox import Outbox
from mailbox_service.storage.outbox.states import version_of

log = get_logger(__name__)


@dataclass
class SweepReport:
    requeued: Counter[str] = field(default_factory=Counter)
    """Per channel: jobs enqueued again."""
    broker_down: bool = False
    """The round stopped early because Redis did not take a job."""

    @property
    def total(self) -> int:
        return sum(self.requeued.values())


class OutboxSweep:
    def __init__(
        self,
        outbox: Outbox,
        queue: NotificationQueue,
        *,
        grace: dt.timedelta,
        channels: tuple[Channel, ...] = CHANNELS,
        batch: int = 500,
        max_batches: int = 20,
    ) -> None:
        self.outbox = outbox
        self.queue = queue
        self.grace = grace
        self.channels = channels
        self.batch = batch
        self.max_batches = max_batches
        self._enqueued: dict[tuple[str, str, int], dt.datetime] = {}

    def run_once(self) -> SweepReport:
        report = SweepReport()
        now = self.outbox.clock()
        self._enqueued = {k: t for k, t in self._enqueued.items() if t > now - self.grace}
        for channel in self.channels:
            after: str | None = None
            for _ in range(self.max_batches):
                found = self.outbox.find_lost(channel, self.grace, self.batch, after)
                for doc in found:
                    outcome = self._recover(doc, channel)
                    if outcome is None:
                        report.broker_down = True
                        return report
                    report.requeued[channel] += outcome
                if len(found) < self.batch:
                    break
                after = str(found[-1]["_id"])
        if report.total:
            log.info("outbox.swept", requeued=dict(report.requeued))
        return report

    def _recover(self, doc: Doc, channel: Channel) -> int | None:
        """Requeue one lost job unless this sweep just did: 1 if requeued, 0 if not, None if
        Redis refused."""
        document_id = str(doc["_id"])
        now = self.outbox.clock()
        key = (document_id, channel, version_of(doc["notifications"][channel]))
        if key in self._enqueued:
            return 0
        if not self.queue.enqueue_blocking(document_id, [channel]):
            return None
        self._enqueued[key] = now
        return 1


def sweep_thread(sweep: OutboxSweep, interval_s: float) -> PeriodicThread:
    """Runs the sweep every `interval_s` seconds inside the worker process until stopped."""
    return PeriodicThread(
        "outbox-sweep", interval_s, sweep.run_once, failure_event="outbox.sweep_failed"
    )
