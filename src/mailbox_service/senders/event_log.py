"""Writing sender events: insert the event, then ask the webhook dispatcher to fan it out.

`EventLog` is the async writer (API, CLI), `BlockingEventLog` the sync one (worker threads).
Recording never fails the change it follows: the change has happened, so a failed insert is
logged and the caller carries on. A failed enqueue loses nothing: the event stays
`dispatched: False` and the webhook sweep dispatches it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import dramatiq
from pymongo.errors import PyMongoError

from mailbox_service.log import get_logger
from mailbox_service.observability import tracing
from mailbox_service.senders.events import (
    DISPATCH_ACTOR,
    WEBHOOK_QUEUE,
    EventType,
    event_id,
    new_event,
)
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.sender_events import BlockingSenderEventStore, SenderEventStore

log = get_logger(__name__)


def enqueue_dispatch(broker: dramatiq.Broker, event: str) -> bool:
    """One dispatch job for the event id; False when Redis could not be reached."""
    try:
        options: dict[str, Any] = {}
        tracing.inject_into(options)
        broker.enqueue(
            dramatiq.Message(
                queue_name=WEBHOOK_QUEUE,
                actor_name=DISPATCH_ACTOR,
                args=(event,),
                kwargs={},
                options=options,
            )
        )
    except Exception as exc:
        log.warning("sender_event.enqueue_failed", event_id=event, error=type(exc).__name__)
        return False
    return True


class BlockingEventLog:
    def __init__(self, events: BlockingSenderEventStore, broker: dramatiq.Broker) -> None:
        self.events = events
        self.broker = broker

    def record(
        self,
        document: Mapping[str, Any],
        type_: EventType,
        data: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Record and publish; the event id, or None when it could not be stored."""
        stored = new_event(document, type_, data)
        try:
            self.events.insert(stored)
        except PyMongoError as exc:
            _lost(stored, exc)
            return None
        identifier = _recorded(stored)
        enqueue_dispatch(self.broker, identifier)
        return identifier


class EventLog:
    def __init__(self, events: SenderEventStore, broker: dramatiq.Broker) -> None:
        self.events = events
        self.broker = broker

    async def record(
        self,
        document: Mapping[str, Any],
        type_: EventType,
        data: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Record and publish; the event id, or None when it could not be stored."""
        stored = new_event(document, type_, data)
        try:
            await self.events.insert(stored)
        except PyMongoError as exc:
            _lost(stored, exc)
            return None
        identifier = _recorded(stored)
        await anyio.to_thread.run_sync(enqueue_dispatch, self.broker, identifier)
        return identifier


def _recorded(stored: Doc) -> str:
    """Log the stored event; its public id."""
    identifier = event_id(stored["_id"])
    log.info(
        "sender_event.recorded",
        event_id=identifier,
        type=stored["type"],
        document_id=stored["document_id"],
    )
    return identifier


def _lost(stored: Doc, exc: PyMongoError) -> None:
    log.error(
        "sender_event.lost",
        type=stored["type"],
        document_id=stored["document_id"],
        error=f"{type(exc).__name__}: {str(exc)[:200]}",
    )
