"""The service's Prometheus metrics, and `observe()` to time a call to a backing service.

Every label here has a small, fixed set of values: document types (from the registry),
channels, outcomes, dependency and operation names. Never an id, an email address, a path with
an id in it or anything secret: /metrics may be read by anyone who can reach it.

Metrics are defined on prometheus_client's default registry. In a process with several
children (`serve --workers N`, `worker --processes N`) `PROMETHEUS_MULTIPROC_DIR` is set before
the children start, and prometheus_client then keeps each child's values in a file there that
the scrape adds up (see observability/exposition.py).

`enabled()` is False when `MAILBOX_METRICS_ENABLED=false`: then nothing is counted or timed.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from mailbox_service.observability import tracing

# Seconds. Dependency calls are mostly sub-millisecond to tens of ms; an SMTP conversation or a
# large upload can take seconds.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

HTTP_PREFIX = "mailbox_http"
"""Litestar's Prometheus middleware names its metrics `<prefix>_requests_total`, ..."""

DOCUMENTS_INGESTED = Counter(
    "mailbox_documents_ingested",
    "Documents stored (new ones, not replays), by type, delivery mode and door.",
    ["type", "delivery", "origin"],
)
NOTIFICATIONS = Counter(
    "mailbox_notifications",
    "Notification jobs by channel and outcome (sent, retry, failed, skipped, not_claimed).",
    ["channel", "status"],
)
NOTIFICATION_SECONDS = Histogram(
    "mailbox_notification_duration_seconds",
    "One notification job, from claim to recorded outcome.",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_SECONDS = Histogram(
    "mailbox_dependency_duration_seconds",
    "Calls to a backing service (mongodb, s3, redis, smtp) by operation, failed ones included.",
    ["dependency", "operation"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_ERRORS = Counter(
    "mailbox_dependency_errors",
    "Calls to a backing service that raised or that the server refused.",
    ["dependency", "operation"],
)
SOCKETIO_CONNECTIONS = Gauge(
    "mailbox_socketio_connections",
    "Socket.IO connections this API process holds (authenticated ones).",
    multiprocess_mode="livesum",
)
DEPENDENCY_READY = Gauge(
    "mailbox_dependency_ready",
    "1 when the dependency answered the last readiness check (GET /health/ready), else 0.",
    ["dependency"],
    multiprocess_mode="livemin",
)
WEBHOOKS = Counter(
    "mailbox_webhooks",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["status"],
)
SECURITY_ALERTS = Counter(
    "mailbox_security_alerts",
    "Security alerts raised (see docs/security.md), by kind.",
    ["kind"],
)

_enabled = True
# Each label combination's child, kept: `.labels()` takes a lock and builds a key every call.
# The label sets are small and fixed (see above), so this stays small.
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def configure(enabled: bool) -> None:
    """Switch counting on or off for this process (settings: metrics.enabled)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def document_ingested(doctype: str, delivery: str, origin: str) -> None:
    if _enabled:
        _child(DOCUMENTS_INGESTED, doctype, delivery, origin).inc()


def notification_done(channel: str, status: str, seconds: float) -> None:
    if _enabled:
        _child(NOTIFICATIONS, channel, status).inc()
        _child(NOTIFICATION_SECONDS, channel).observe(seconds)


def webhook_done(status: str) -> None:
    if _enabled:
        _child(WEBHOOKS, status).inc()


def socketio_connections(delta: int) -> None:
    if _enabled:
        SOCKETIO_CONNECTIONS.inc(delta)


def security_alert(kind: str) -> None:
    """Count one alert; `kind` must be one of a fixed set of names, never user input."""
    if _enabled:
        _child(SECURITY_ALERTS, kind).inc()


def readiness(dependency: str, up: bool) -> None:
    if _enabled:
        _child(DEPENDENCY_READY, dependency).set(1 if up else 0)


def dependency_call(dependency: str, operation: str, seconds: float, failed: bool) -> None:
    if _enabled:
        _child(DEPENDENCY_SECONDS, dependency, operation).observe(seconds)
        if failed:
            _child(DEPENDENCY_ERRORS, dependency, operation).inc()


class _Observed:
    """The context manager `observe()` returns (a class: cheaper than a generator's)."""

    __slots__ = ("dependency", "operation", "span", "started")

    def __init__(self, dependency: str, operation: str) -> None:
        self.dependency = dependency
        self.operation = operation
        self.span: Any = None
        self.started = 0.0

    def __enter__(self) -> None:
        if tracing.enabled():
            self.span = tracing.client_span(
                f"{self.dependency} {self.operation}", self.dependency, self.operation
            )
            self.span.__enter__()
        self.started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self.started
        if self.span is not None:
            self.span.__exit__(exc_type, exc, traceback)
        dependency_call(self.dependency, self.operation, elapsed, exc_type is not None)


def observe(dependency: str, operation: str) -> _Observed:
    """Time a call to `dependency` (a histogram) and trace it (a client span, when tracing is
    on): `with observe("s3", "put"): ...`. A failed call (an exception) is counted as an error
    too."""
    return _Observed(dependency, operation)
