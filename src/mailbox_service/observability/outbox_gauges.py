"""`mailbox_outbox_pending{channel}` and `mailbox_outbox_oldest_pending_seconds{channel}`,
counted in MongoDB when Prometheus scrapes the worker, at most once per `refresh_s`.

Two queries per channel on the `notifications.<channel>.status` index (a count, and the
oldest such document's `created_at`, sorted in memory among the undelivered ones) take about
15 ms together on DocumentDB; caching them means any number of
scrapers costs the database the same. "Pending" is everything a worker still has to do:
`pending` (new, or waiting for a retry) and `sending` (claimed). When MongoDB does not answer,
the gauges are left out of that scrape (and `mailbox_outbox_scrape_errors_total` counts it)
rather than reporting stale values as current; so are they until the status indexes exist
(created at start-up by the worker that runs the sweep).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo import ASCENDING
from pymongo.collection import Collection

from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import CHANNELS
from mailbox_service.storage.mongo import Doc

log = get_logger(__name__)

UNDELIVERED = ["pending", "sending"]

SCRAPE_ERRORS = Counter(
    "mailbox_outbox_scrape_errors", "Scrapes whose outbox count failed (MongoDB unreachable)."
)


@dataclass(frozen=True)
class ChannelBacklog:
    pending: int
    oldest_seconds: float


def measure(
    documents: Collection[Doc], now: dt.datetime, timeout_ms: int = 2000
) -> dict[str, ChannelBacklog]:
    backlog: dict[str, ChannelBacklog] = {}
    for channel in CHANNELS:
        status = f"notifications.{channel}.status"
        query = {status: {"$in": UNDELIVERED}}
        # The status index (notifications/outbox.py), never `created_at`'s: walking documents
        # by age until the first undelivered one could read the whole collection.
        by_status = [(status, ASCENDING)]
        pending = documents.count_documents(query, maxTimeMS=timeout_ms, hint=by_status)
        oldest = 0.0
        if pending:
            first = documents.find_one(
                query,
                {"created_at": 1},
                sort=[("created_at", ASCENDING)],
                hint=by_status,
                max_time_ms=timeout_ms,
            )
            if first is not None and first.get("created_at") is not None:
                oldest = max(0.0, (now - first["created_at"]).total_seconds())
        backlog[channel] = ChannelBacklog(pending, oldest)
    return backlog


class OutboxCollector(Collector):
    def __init__(
        self,
        documents: Collection[Doc],
        refresh_s: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._documents = documents
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._measured_at = float("-inf")
        self._backlog: dict[str, ChannelBacklog] | None = None

    def _current(self) -> dict[str, ChannelBacklog] | None:
        with self._lock:
            if time.monotonic() - self._measured_at >= self._refresh_s:
                try:
                    self._backlog = measure(self._documents, self._clock())
                except Exception as exc:
                    SCRAPE_ERRORS.inc()
                    log.warning("metrics.outbox_failed", error=f"{type(exc).__name__}: {exc}")
                    self._backlog = None
                self._measured_at = time.monotonic()
            return self._backlog

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query MongoDB

    def collect(self) -> Iterable[Metric]:
        backlog = self._current()
        if backlog is None:
            return
        pending = GaugeMetricFamily(
            "mailbox_outbox_pending",
            "Notifications not yet delivered (pending or being sent), by channel.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "mailbox_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered notification's document, by channel (0 when none).",
            labels=["channel"],
        )
        for channel, value in backlog.items():
            pending.add_metric([channel], value.pending)
            oldest.add_metric([channel], value.oldest_seconds)
        yield pending
        yield oldest
