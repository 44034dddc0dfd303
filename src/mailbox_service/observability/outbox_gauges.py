"""`mailbox_outbox_pending{channel}` and `mailbox_outbox_oldest_pending_seconds{channel}`,
counted in MongoDB when Prometheus scrapes the worker, at most once per `refresh_s`.

The outbox store counts (storage/outbox: `Outbox.backlog`): two queries per channel on the
`notifications.<channel>.status` index (a count, and the oldest such document's `created_at`,
sorted in memory among the undelivered ones) take about 15 ms together on DocumentDB; caching
them means any number of scrapers costs the database the same. This module only needs
something with that method (`BacklogSource`), so observability imports no storage.
"Pending" is everything a worker still has to do: `pending` (new, or waiting for a retry) and
`sending` (claimed). When MongoDB does not answer, the gauges are left out of that scrape
(and `mailbox_outbox_scrape_errors_total` counts it) rather than reporting stale values as
current; so are they until the status indexes exist (created at start-up by the worker that
runs the sweep).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger

log = get_logger(__name__)

SCRAPE_ERRORS = Counter(
    "mailbox_outbox_scrape_errors", "Scrapes whose outbox count failed (MongoDB unreachable)."
)


@dataclass(frozen=True)
class ChannelBacklog:
    pending: int
    oldest_seconds: float


class Undelivered(Protocol):
    """One channel's count as the outbox store gives it."""

    @property
    def pending(self) -> int: ...

    @property
    def oldest_created_at(self) -> dt.datetime | None: ...


class BacklogSource(Protocol):
    """What the gauges read: the worker's outbox store."""

    def backlog(self, timeout_ms: int) -> Mapping[str, Undelivered]: ...


def measure(
    source: BacklogSource, now: dt.datetime, timeout_ms: int = 2000
) -> dict[str, ChannelBacklog]:
    backlog: dict[str, ChannelBacklog] = {}
    for channel, counted in source.backlog(timeout_ms).items():
        oldest = counted.oldest_created_at
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        backlog[channel] = ChannelBacklog(counted.pending, age)
    return backlog


class OutboxCollector(Collector):
    def __init__(
        self,
        source: BacklogSource,
        refresh_s: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._source = source
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._measured_at = float("-inf")
        self._backlog: dict[str, ChannelBacklog] | None = None

    def _current(self) -> dict[str, ChannelBacklog] | None:
        with self._lock:
            if time.monotonic() - self._measured_at >= self._refresh_s:
                try:
                    self._backlog = measure(self._source, self._clock())
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
