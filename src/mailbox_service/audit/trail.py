"""AuditTrail: record an action now, write it a moment later, off the request path.

`record` appends to an in-process buffer and returns; a background task (started by the first
`record`, stopped by `close`, which Services.close calls) writes the buffer every
`flush_interval_s`, or as soon as `batch_size` entries wait. What a crash costs: the entries
still in the buffer, at most one flush interval's worth. Those are simply absent; they never
leave a gap in a chain (they had no sequence numbers yet). While MongoDB is unreachable the
buffer keeps up to `max_buffer` entries, then drops the oldest and logs `audit.dropped`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from mailbox_service.audit.chain import AuditChain
from mailbox_service.audit.entry import ACTIONS, Actor, actor_id, plain_details
from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger
from mailbox_service.settings import AuditSettings
from mailbox_service.storage.mongo import Doc

log = get_logger(__name__)


class AuditTrail:
    def __init__(self, chain: AuditChain, settings: AuditSettings) -> None:
        self.chain = chain
        self._settings = settings
        self._buffer: list[Doc] = []
        self._unwritten: list[Doc] = []
        """Chained entries whose insert failed: retried first, with the same ids."""
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._dropped = 0
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._unwritten)

    async def record(
        self,
        action: str,
        actor: Actor,
        *,
        account_id: str | None = None,
        document_id: str | None = None,
        client: str | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Buffer one entry; it is written within `flush_interval_s`."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if not self._settings.enabled:
            return
        self._buffer.append(
            {
                "at": utcnow(),
                "action": action,
                "actor": dict(actor),
                "actor_id": actor_id(actor),
                "account_id": account_id,
                "document_id": document_id,
                "client": client,
                "request_id": request_id,
                "details": plain_details(details),
            }
        )
        overflow = len(self._buffer) - self._settings.max_buffer
        if overflow > 0:
            del self._buffer[:overflow]
            self._dropped += overflow
        self._start()
        if len(self._buffer) >= self._settings.batch_size and self._wake is not None:
            self._wake.set()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._lock = self._lock or asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-flush")

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.flush_interval_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                log.error(
                    "audit.flush_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    buffered=self.buffered,
                )

    async def flush(self) -> None:
        """Write everything buffered now (the background task calls this; so may tests)."""
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._dropped:
                log.error(
                    "audit.dropped", entries=self._dropped, max_buffer=self._settings.max_buffer
                )
                self._dropped = 0
            if self._unwritten:
                await self.chain.insert(self._unwritten)
                self._unwritten = []
            while self._buffer:
                batch = self._buffer[: self._settings.batch_size]
                del self._buffer[: len(batch)]
                try:
                    chained = await self.chain.extend(batch)
                except BaseException:
                    self._buffer[:0] = batch
                    raise
                try:
                    await self.chain.insert(chained)
                except BaseException:
                    self._unwritten = chained
                    raise

    async def close(self) -> None:
        """Stop the background task and write what is left (called on shutdown).

        The task is asked to stop, not cancelled: a cancel between the compare-and-set and the
        insert would leave a gap in the chain.
        """
        if self._task is not None and self._wake is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            self._task = None
            self._stopping = False
        if self.buffered:
            try:
                await self.flush()
            except Exception as exc:
                log.error("audit.lost_on_shutdown", error=str(exc), entries=self.buffered)
