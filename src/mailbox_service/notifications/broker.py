"""The one dramatiq broker of a process, set here before any actor is imported."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from mailbox_service.settings import RedisSettings


def make_broker(settings: RedisSettings) -> RedisBroker:
    # Short timeouts: a dead Redis must fail an enqueue quickly, not hang an ingest request.
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=settings.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def install_broker(settings: RedisSettings) -> RedisBroker:
    broker = make_broker(settings)
    dramatiq.set_broker(broker)
    return broker
