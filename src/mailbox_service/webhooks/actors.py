"""The dramatiq actors of the `webhooks` queue: `dispatch_webhooks(event id)` and
`deliver_webhook(delivery id)`, declared by the worker on its broker around its Courier.

Failed attempts are retried by the Courier itself (a delayed job, `next_at` on the delivery);
dramatiq's own retries only see errors from outside an attempt (MongoDB unreachable).
"""

from __future__ import annotations

from typing import Any

import dramatiq

from mailbox_service.senders.events import DISPATCH_ACTOR, WEBHOOK_QUEUE
from mailbox_service.settings import WebhookSettings
from mailbox_service.webhooks.courier import DELIVER_ACTOR, Courier


def declare_webhook_actors(
    broker: dramatiq.Broker, courier: Courier, settings: WebhookSettings
) -> None:
    options: dict[str, Any] = {
        "max_retries": 5,
        "min_backoff": 1000,
        "max_backoff": 60_000,
        "time_limit": int(courier.lease.total_seconds() * 1000 * 0.9),
    }

    def dispatch_webhooks(event_id: str) -> None:
        courier.dispatch(event_id)

    def deliver_webhook(delivery_id: str) -> None:
        courier.deliver(delivery_id)

    dramatiq.actor(broker=broker, actor_name=DISPATCH_ACTOR, queue_name=WEBHOOK_QUEUE, **options)(
        dispatch_webhooks
    )
    dramatiq.actor(broker=broker, actor_name=DELIVER_ACTOR, queue_name=WEBHOOK_QUEUE, **options)(
        deliver_webhook
    )
