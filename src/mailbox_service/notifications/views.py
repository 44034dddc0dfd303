"""ViewWriter: writes the outbox views on documents in the background, merged per document.

The transition log is the truth (outbox.py); the `notifications.<channel>` view on a document
is what operators and the sweep query. So a job is done once its transition is logged, and the
view can follow a moment later. One writer thread per worker process holds each document's
view for up to `settle_s`, so that its email and real-time outcomes (which usually finish
within a few tens of milliseconds of each other) go out as one update, and sends up to `batch`
documents per bulk write. On FerretDB, where every update by `_id` scans the whole collection,
that halves the cost of recording outcomes. A single writer also means the process never
writes one document from two threads at once, which on FerretDB 1.x (no isolation between
updates) would lose one of the two.

A view that is never written (process killed, MongoDB down) only lags: the sweep finds views
still `pending`/`sending` and repairs them from the log.

Batches stay small on purpose: FerretDB 1.24 holds one PostgreSQL connection per statement of
a bulk update until the whole command ends, and a bulk of more statements than its pool has
(50) deadlocks the server for every client (reproduced: 40 statements pass, 60 hang forever).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import CHANNELS, Channel
from mailbox_service.storage.mongo import Doc

log = get_logger(__name__)

_STOP = object()


def merge_into(fields: dict[str, Any], channel: Channel, state: Mapping[str, Any]) -> None:
    """Add a channel's state to a document's `$set`, keeping the newest (highest version)."""
    key = f"notifications.{channel}"
    previous = fields.get(key)
    if previous is None or int(state.get("version") or 0) >= int(previous.get("version") or 0):
        fields[key] = dict(state)


class ViewWriter(threading.Thread):
    def __init__(
        self,
        documents: Collection[Doc],
        *,
        settle_s: float = 0.2,
        batch: int = 8,
        clock: Any = time.monotonic,
    ) -> None:
        super().__init__(name="outbox-views", daemon=True)
        self.documents = documents
        self.settle_s = settle_s
        self.batch = batch
        self.clock = clock
        self._queue: queue.Queue[Any] = queue.Queue()
        # document id → (flush deadline, its `$set`), in arrival order
        self._held: dict[str, tuple[float, dict[str, Any]]] = {}

    def submit(self, document_id: str, channel: Channel, state: Mapping[str, Any]) -> None:
        self._queue.put((document_id, channel, dict(state)))

    def hold(self, document_id: str, channel: Channel, state: Mapping[str, Any]) -> None:
        deadline, fields = self._held.get(document_id, (self.clock() + self.settle_s, {}))
        merge_into(fields, channel, state)
        if len(fields) == len(CHANNELS):
            deadline = 0.0  # every channel is in: nothing left to wait for
        self._held[document_id] = (deadline, fields)

    def due(self, force: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """Held documents whose time is up (all of them when `force`), oldest first."""
        now = self.clock()
        ready = [(d, f) for d, (t, f) in self._held.items() if force or t <= now]
        for document_id, _ in ready:
            del self._held[document_id]
        return ready

    def run(self) -> None:
        stopping = False
        while not stopping:
            deadlines = [t for t, _ in self._held.values()]
            timeout = max(0.0, min(deadlines) - self.clock()) if deadlines else None
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                stopping = True
            elif item is not None:
                self.hold(*item)
            self._write(self.due(force=stopping))

    def _write(self, ready: list[tuple[str, dict[str, Any]]]) -> None:
        for start in range(0, len(ready), self.batch):
            updates = [
                UpdateOne({"_id": document_id}, {"$set": fields})
                for document_id, fields in ready[start : start + self.batch]
            ]
            try:
                self.documents.bulk_write(updates, ordered=False)
            except PyMongoError as exc:  # the sweep repairs these views from the log
                log.warning("outbox.view_write_failed", views=len(updates), error=str(exc)[:300])

    def close(self, timeout: float = 10.0) -> None:
        """Write what is held, then stop."""
        self._queue.put(_STOP)
        self.join(timeout)
