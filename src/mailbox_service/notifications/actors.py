"""The dramatiq actors: one per channel, each taking only a document id.

Actors are declared by the worker process at start-up, on the broker it installed, around the
Deliverer it built, so there is no module-level state to set up in the right order. Producers
(ingest, sweep, resend) never import this module: they enqueue by actor name
(notifications/queue.py).

Delivery failures are handled inside the Deliverer (outbox status, backoff, re-enqueue with a
delay); dramatiq's own Retries middleware only sees errors from outside a delivery, e.g.
MongoDB unreachable while claiming, and retries those with the same backoff settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import dramatiq

from mailbox_service.notifications.channels import ACTOR, QUEUE, Channel
from mailbox_service.notifications.delivery import Deliverer, Outcome
from mailbox_service.observability import metrics
from mailbox_service.settings import NotifySettings


def declare_actors(
    broker: dramatiq.Broker, deliverer: Deliverer, notify: NotifySettings
) -> dict[Channel, dramatiq.Actor[[str], None]]:
    """Register `deliver_email` and `deliver_realtime` on `broker` (which declares their queues)."""
    options: dict[str, Any] = {
        "max_retries": notify.max_attempts,
        "min_backoff": notify.min_backoff_ms,
        "max_backoff": notify.max_backoff_ms,
        # Interrupt a stuck job before its lease ends, so the handover stays a handover.
        "time_limit": int(notify.lease_s * 1000 * 0.9),
    }

    def counted(channel: Channel, deliver: Callable[[str], Outcome], document_id: str) -> None:
        started = time.perf_counter()
        outcome = "error"  # raised out of the delivery (e.g. MongoDB down): dramatiq retries
        try:
            outcome = deliver(document_id)
        finally:
            metrics.notification_done(channel, outcome, time.perf_counter() - started)

    def deliver_email(document_id: str) -> None:
        counted("email", deliverer.deliver_email, document_id)

    def deliver_realtime(document_id: str) -> None:
        counted("realtime", deliverer.deliver_realtime, document_id)

    return {
        "email": dramatiq.actor(
            broker=broker, actor_name=ACTOR["email"], queue_name=QUEUE["email"], **options
        )(deliver_email),
        "realtime": dramatiq.actor(
            broker=broker, actor_name=ACTOR["realtime"], queue_name=QUEUE["realtime"], **options
        )(deliver_realtime),
    }
