"""NotificationQueue: hands a document id to the workers through dramatiq on Redis.

Redis is only a courier. When it is down, enqueue logs and returns: the notification stays
`pending` on the document, and the outbox sweep enqueues it again later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio.to_thread
import dramatiq

from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import ACTOR, QUEUE, Channel
from mailbox_service.observability import tracing
from mailbox_service.observability.metrics import observe

log = get_logger(__name__)


class NotificationQueue:
    def __init__(self, broker: dramatiq.Broker) -> None:
        self._broker = broker

    def enqueue_blocking(self, document_id: str, channels: Iterable[Channel]) -> bool:
        """Send one job per channel; False when the broker could not be reached."""
        return all(self.enqueue_later(document_id, channel, 0) for channel in channels)

    def enqueue_later(self, document_id: str, channel: Channel, delay_ms: int) -> bool:
        """One job for `channel`, delivered to a worker no earlier than `delay_ms` from now
        (a retry's backoff); False when the broker could not be reached."""
        try:
            with observe("redis", "enqueue"):
                # The job carries the trace (when tracing): the worker's span continues it.
                options: dict[str, Any] = {}
                tracing.inject_into(options)
                message: dramatiq.Message[Any] = dramatiq.Message(
                    queue_name=QUEUE[channel],
                    actor_name=ACTOR[channel],
                    args=(document_id,),
                    kwargs={},
                    options=options,
                )
                self._broker.enqueue(message, delay=max(0, delay_ms) or None)
        except Exception as exc:
            log.warning(
                "notification.enqueue_failed",
                document_id=document_id,
                channel=channel,
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        return True

    async def enqueue(self, document_id: str, channels: Iterable[Channel]) -> bool:
        channel_list = list(channels)
        if not channel_list:
            return True
        return await anyio.to_thread.run_sync(self.enqueue_blocking, document_id, channel_list)
