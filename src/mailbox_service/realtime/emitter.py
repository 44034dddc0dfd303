"""Emit document events from any process (API node, worker, CLI) through Redis.

A write-only Socket.IO client manager publishes to the Redis channel every Socket.IO server
listens on; each server delivers the event to the sockets it holds in the account's room.
The emitting process needs no Socket.IO server of its own.

Two flavours with the same methods:

- `RealtimeEmitter` (async): for code running on an event loop (the API, async workers).
- `BlockingRealtimeEmitter` (sync): for a dramatiq actor, which runs in a plain worker thread.
  Build one per worker process (it is thread-safe: redis-py's connection pool is) and call
  `emitter.emit_created(doc)`; do not wrap the async one in `asyncio.run()` per message, since
  its Redis connection belongs to the event loop that created it.

Both raise `DependencyUnavailable` when Redis does not take the message, so the caller (the
outbox) can retry; python-socketio itself would only log and drop it.
"""

from __future__ import annotations

from typing import Any

import socketio

from mailbox_service.errors import DependencyUnavailable
from mailbox_service.observability.metrics import observe
from mailbox_service.realtime.events import (
    CHANNEL,
    NAMESPACE,
    DocumentEvent,
    EventSource,
    created_event,
    emit_document_event,
    room_for,
    typed,
    updated_event,
    wire_data,
)
from mailbox_service.storage.mongo import Doc

Source = EventSource | Doc
"""A typed document, or a raw record from code that does not read typed documents yet."""

REDIS_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}


class _CheckedAsyncRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """Raises instead of logging when a publish fails (python-socketio gives up silently)."""

    async def _publish(self, data: Any) -> Any:
        receivers = await super()._publish(data)
        if receivers is None:
            raise DependencyUnavailable("redis: the realtime event could not be published")
        return receivers


class _CheckedRedisManager(socketio.RedisManager):  # type: ignore[misc]
    def _publish(self, data: Any) -> Any:
        receivers = super()._publish(data)
        if receivers is None:
            raise DependencyUnavailable("redis: the realtime event could not be published")
        return receivers


class RealtimeEmitter:
    """Async emitter; `await emit_created(doc)` / `await emit_updated(doc)` with stored docs."""

    def __init__(self, redis_url: str, *, channel: str = CHANNEL) -> None:
        self._manager = _CheckedAsyncRedisManager(
            redis_url, channel=channel, write_only=True, redis_options=dict(REDIS_OPTIONS)
        )

    async def emit(self, event: DocumentEvent) -> None:
        with observe("redis", "socketio_emit"):
            await emit_document_event(self._manager, event)

    async def emit_created(self, doc: Source) -> None:
        """`document.created` to the document's account room (the worker calls this)."""
        await self.emit(created_event(typed(doc)))

    async def emit_updated(self, doc: Source) -> None:
        """`document.updated` with the document's current read/archive state."""
        await self.emit(updated_event(typed(doc)))

    async def close(self) -> None:
        redis = self._manager.redis
        if redis is not None:
            await redis.aclose()
            self._manager.redis = None
            self._manager.connected = False


class BlockingRealtimeEmitter:
    """The same as RealtimeEmitter for threads without an event loop (dramatiq actors)."""

    def __init__(self, redis_url: str, *, channel: str = CHANNEL) -> None:
        self._manager = _CheckedRedisManager(
            redis_url, channel=channel, write_only=True, redis_options=dict(REDIS_OPTIONS)
        )

    def emit(self, event: DocumentEvent) -> None:
        with observe("redis", "socketio_emit"):
            self._manager.emit(
                event.event, wire_data(event), namespace=NAMESPACE, room=room_for(event.account_id)
            )

    def emit_created(self, doc: Source) -> None:
        self.emit(created_event(typed(doc)))

    def emit_updated(self, doc: Source) -> None:
        self.emit(updated_event(typed(doc)))

    def close(self) -> None:
        redis = self._manager.redis
        if redis is not None:
            redis.close()
