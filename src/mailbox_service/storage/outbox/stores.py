"""The outbox stores: the operations of operations.py bound to one driver each.

`Outbox` runs them with sync pymongo (the threaded worker, its sweep, the metrics scrape),
`AsyncOutbox` with the async driver (the admin API and CLI). Both expose the same state
machine; each adds what only its callers need (the backlog for the worker's gauges; the
operators' page and day counts for the admin API).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection
from pymongo.database import Database

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections
from mailbox_service.storage.outbox.indexes import ensure_indexes
from mailbox_service.storage.outbox.operations import (
    Backlog,
    OutboxOperations,
    run_async,
    run_blocking,
)
from mailbox_service.storage.outbox.states import CHANNELS, Channel, Claim, Doc, State
from mailbox_service.storage.stored_document import StoredDocument, decode_document


class Outbox(OutboxOperations):
    """The operations with sync pymongo: the worker (threaded), its sweep and its metrics."""

    def __init__(
        self,
        documents: Collection[Doc],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__(lease=lease, clock=clock)
        self._documents = documents

    @classmethod
    def on(cls, database: Database[Doc], *, lease: dt.timedelta) -> Outbox:
        """The outbox of the database's `documents`."""
        return cls(database["documents"], lease=lease)

    def claim(self, document_id: str, channel: Channel, worker: str) -> Claim | None:
        """Reserve the channel and read the document, or None when it is not ours to deliver
        (already done, not due, or another worker holds it)."""
        return run_blocking(self._documents, self.claiming(document_id, channel, worker))

    def attempt(self, document_id: str, channel: Channel) -> Claim | None:
        """Read the document if the channel is claimable, writing nothing: for a channel whose
        delivery may happen twice (the real-time event; clients de-duplicate by document id).
        Only the outcome is written, and only if nobody changed the channel meanwhile; two
        workers racing both deliver, one records. Saves the claim's write."""
        return run_blocking(self._documents, self.attempting(document_id, channel))

    def sent(self, claim: Claim, **extra: Any) -> bool:
        """Record success; False if the lease was lost meanwhile (someone else took over)."""
        return run_blocking(self._documents, self.sending(claim, extra))

    def retry_at(self, claim: Claim, error: str, next_at: dt.datetime) -> bool:
        return run_blocking(self._documents, self.retrying(claim, error, next_at))

    def failed(self, claim: Claim, error: str) -> bool:
        return run_blocking(self._documents, self.failing(claim, error))

    def skipped(self, claim: Claim, reason: str) -> bool:
        return run_blocking(self._documents, self.skipping(claim, reason))

    def resend(self, document_id: str, channel: Channel, by: str) -> State:
        """Reset the channel to a fresh `pending`; NotFound, or Conflict (printed, busy)."""
        return run_blocking(self._documents, self.resending(document_id, channel, by))

    def find_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None = None
    ) -> list[Doc]:
        """Channels whose job should have reached a worker by now, in `_id` order."""
        return run_blocking(self._documents, self.finding_lost(channel, grace, limit, after_id))

    def backlog(self, timeout_ms: int) -> dict[str, Backlog]:
        """Per channel: undelivered notifications and the oldest one's `created_at`."""
        return {
            channel: run_blocking(self._documents, self.measuring_backlog(channel, timeout_ms))
            for channel in CHANNELS
        }

    def ensure_indexes(self) -> None:
        ensure_indexes(self._documents)


class AsyncOutbox(OutboxOperations):
    """The same operations with the async driver: the admin API and CLI."""

    def __init__(
        self,
        documents: AsyncCollection[Doc],
        *,
        lease: dt.timedelta,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__(lease=lease, clock=clock)
        self._documents = documents

    @classmethod
    def on(cls, collections: Collections, *, lease: dt.timedelta) -> AsyncOutbox:
        """The outbox of the database's `documents`."""
        return cls(collections.documents, lease=lease)

    async def claim(self, document_id: str, channel: Channel, worker: str) -> Claim | None:
        return await run_async(self._documents, self.claiming(document_id, channel, worker))

    async def attempt(self, document_id: str, channel: Channel) -> Claim | None:
        return await run_async(self._documents, self.attempting(document_id, channel))

    async def sent(self, claim: Claim, **extra: Any) -> bool:
        return await run_async(self._documents, self.sending(claim, extra))

    async def retry_at(self, claim: Claim, error: str, next_at: dt.datetime) -> bool:
        return await run_async(self._documents, self.retrying(claim, error, next_at))

    async def failed(self, claim: Claim, error: str) -> bool:
        return await run_async(self._documents, self.failing(claim, error))

    async def skipped(self, claim: Claim, reason: str) -> bool:
        return await run_async(self._documents, self.skipping(claim, reason))

    async def resend(self, document_id: str, channel: Channel, by: str) -> State:
        return await run_async(self._documents, self.resending(document_id, channel, by))

    async def find_lost(
        self, channel: Channel, grace: dt.timedelta, limit: int, after_id: str | None = None
    ) -> list[Doc]:
        return await run_async(self._documents, self.finding_lost(channel, grace, limit, after_id))

    async def page(
        self,
        status: str,
        channels: tuple[Channel, ...],
        limit: int,
        before: tuple[dt.datetime, str] | None = None,
    ) -> list[StoredDocument]:
        """Documents with any of `channels` in `status`, newest first, after `before`."""
        records = await run_async(self._documents, self.paging(status, channels, limit, before))
        return [decode_document(record) for record in records]

    async def count_day(self, low: dt.datetime, high: dt.datetime) -> list[Doc]:
        """Documents created in [low, high), counted by type and each channel's status."""
        return await run_async(self._documents, self.counting_day(low, high))
