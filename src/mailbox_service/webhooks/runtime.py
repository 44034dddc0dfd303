"""The webhook side of one worker process: its own dramatiq worker threads, actors and sweep.

The `webhooks` queue is consumed by a second dramatiq Worker with its own threads
(`webhook.threads`): the email and real-time threads never run a webhook job, so receivers
that are slow (each attempt may take up to `webhook.timeout_s`) or down cannot delay a
notification.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dramatiq
from pymongo import MongoClient

from mailbox_service.periodic import PeriodicThread
from mailbox_service.senders.events import WEBHOOK_QUEUE
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import blocking_database
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.sender_events import BlockingSenderEventStore
from mailbox_service.storage.webhooks import (
    BlockingWebhookDeliveryStore,
    BlockingWebhookEndpointStore,
)
from mailbox_service.webhooks.actors import declare_webhook_actors
from mailbox_service.webhooks.courier import Courier, WebhookJobs
from mailbox_service.webhooks.sender import WebhookSender
from mailbox_service.webhooks.sweep import WebhookSweep, webhook_sweep_thread


@dataclass
class WebhookRuntime:
    settings: Settings
    courier: Courier
    sender: WebhookSender
    worker: dramatiq.Worker
    sweeper: PeriodicThread | None = None

    @classmethod
    def start(
        cls, settings: Settings, broker: dramatiq.Broker, mongo: MongoClient[Doc], *, sweep: bool
    ) -> WebhookRuntime:
        db = blocking_database(mongo, settings.mongo.database)
        webhook = settings.webhook
        sender = WebhookSender(
            timeout_s=webhook.timeout_s,
            allow_private=webhook.allow_private,
            pool=max(webhook.threads * 2, 4),
        )
        jobs = WebhookJobs(broker)
        events = BlockingSenderEventStore(db)
        deliveries = BlockingWebhookDeliveryStore(db)
        courier = Courier(
            events=events,
            endpoints=BlockingWebhookEndpointStore(db),
            deliveries=deliveries,
            sender=sender,
            jobs=jobs,
            settings=webhook,
        )
        declare_webhook_actors(broker, courier, webhook)
        worker = dramatiq.Worker(
            broker, queues={WEBHOOK_QUEUE}, worker_threads=webhook.threads, worker_timeout=200
        )
        worker.start()
        sweeper = None
        if sweep:
            sweeper = webhook_sweep_thread(
                WebhookSweep(
                    events,
                    deliveries,
                    jobs,
                    grace=dt.timedelta(seconds=webhook.sweep_grace_s),
                ),
                webhook.sweep_interval_s,
            )
            sweeper.start()
        return cls(settings, courier, sender, worker, sweeper)

    def stop(self) -> None:
        if self.sweeper:
            self.sweeper.stop()
        timeout_ms = int((self.settings.webhook.timeout_s * 3 + 5) * 1000)
        self.worker.stop(timeout=timeout_ms)
        self.sender.close()
