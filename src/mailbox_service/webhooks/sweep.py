"""The webhook sweep: no event or delivery waits forever for a job Redis lost.

Every `webhook.sweep_interval_s` the worker that runs the sweep
  - enqueues a dispatch for events still `dispatched: false` older than the grace (their job
    was lost, or Redis was down when they were recorded);
  - enqueues a delivery job for deliveries due for longer than the grace, or `sending` with an
    expired lease (the worker died mid-attempt).
A job enqueued twice is harmless: a dispatch inserts nothing it has, a delivery's claim lets
one job through. What this sweep enqueued is not enqueued again within the grace.
"""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger
from mailbox_service.periodic import PeriodicThread
from mailbox_service.senders.event_log import enqueue_dispatch
from mailbox_service.senders.events import event_id
from mailbox_service.storage.sender_events import BlockingSenderEventStore
from mailbox_service.storage.webhooks import BlockingWebhookDeliveryStore
from mailbox_service.webhooks.courier import WebhookJobs

log = get_logger(__name__)


class WebhookSweep:
    def __init__(
        self,
        events: BlockingSenderEventStore,
        deliveries: BlockingWebhookDeliveryStore,
        jobs: WebhookJobs,
        *,
        grace: dt.timedelta,
        batch: int = 500,
    ) -> None:
        self.events = events
        self.deliveries = deliveries
        self.jobs = jobs
        self.grace = grace
        self.batch = batch
        self._enqueued: dict[tuple[str, int], dt.datetime] = {}

    def run_once(self) -> tuple[int, int]:
        """(dispatches, deliveries) enqueued again."""
        now = utcnow()
        self._enqueued = {k: t for k, t in self._enqueued.items() if t > now - self.grace}
        cutoff = ObjectId.from_datetime(now - self.grace)
        dispatched = 0
        for object_id in self.events.undispatched_ids(cutoff, self.batch):
            key = (event_id(object_id), -1)
            if key in self._enqueued:
                continue
            if not enqueue_dispatch(self.jobs.broker, key[0]):
                break
            self._enqueued[key] = now
            dispatched += 1
        delivered = 0
        for delivery in self.deliveries.find_lost(self.grace, self.batch):
            key = (delivery["_id"], int(delivery.get("attempts") or 0))
            if key in self._enqueued:
                continue
            if not self.jobs.enqueue(delivery["_id"]):
                break
            self._enqueued[key] = now
            delivered += 1
        if dispatched or delivered:
            log.info("webhook.swept", dispatches=dispatched, deliveries=delivered)
        return dispatched, delivered


def webhook_sweep_thread(sweep: WebhookSweep, interval_s: float) -> PeriodicThread:
    return PeriodicThread(
        "webhook-sweep", interval_s, sweep.run_once, failure_event="webhook.sweep_failed"
    )
