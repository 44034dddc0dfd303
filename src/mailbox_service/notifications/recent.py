"""RecentDocuments: the documents a worker process read in the last few seconds.

Ingest enqueues a document's email and real-time jobs together, so the second one usually runs
a moment after the first, in the same process. Both need the whole document; keeping it for a
few seconds saves the second read. Only the immutable parts matter (type, attributes, title,
delivery); a channel state read from here may be stale, which costs nothing in correctness:
claims are checked against the transition log (outbox.py). The outbox updates the cached
channel state when it records an outcome, so duplicates find it done without a detour.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from mailbox_service.storage.mongo import Doc


def _copy(doc: Doc) -> Doc:
    """Top level and channel states copied: callers change those, never deeper parts."""
    states = doc.get("notifications") or {}
    return {**doc, "notifications": {k: dict(v) for k, v in states.items()}}


class RecentDocuments:
    def __init__(self, ttl_s: float = 5.0, size: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._docs: OrderedDict[str, tuple[float, Doc]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, document_id: str) -> Doc | None:
        now = time.monotonic()
        with self._lock:
            entry = self._docs.get(document_id)
            if entry is None or entry[0] < now:
                return None
            return _copy(entry[1])

    def put(self, doc: Doc) -> None:
        with self._lock:
            self._docs[str(doc["_id"])] = (time.monotonic() + self.ttl_s, _copy(doc))
            self._docs.move_to_end(str(doc["_id"]))
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)

    def update_state(self, document_id: str, channel: str, state: dict[str, Any]) -> None:
        with self._lock:
            entry = self._docs.get(document_id)
            if entry is not None:
                entry[1]["notifications"][channel] = dict(state)
