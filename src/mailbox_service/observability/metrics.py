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
from collections.abc import Iterator
from contextlib import contextmanager

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
SECURITY_ALERTS = Counter(
    "mailbox_security_alerts",
    "Security alerts raised (see docs/security.md), by kind.",
    ["kind"],
)

_enabled = True


def configure(enabled: bool) -> None:
    """Switch counting on or off for this process (settings: metrics.enabled)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def document_ingested(doctype: str, delivery: str, origin: str) -> None:
    if _enabled:
        DOCUMENTS_INGESTED.labels(doctype, delivery, origin).inc()


def notification_done(channel: str, status: str, seconds: float) -> None:
    if _enabled:
        NOTIFICATIONS.labels(channel, status).inc()
        NOTIFICATION_SECONDS.labels(channel).observe(seconds)


def security_alert(kind: str) -> None:
    """Count one alert; `kind` must be one of a fixed set of names, never user input."""
    if _enabled:
        SECURITY_ALERTS.labels(kind).inc()


def readiness(dependency: str, up: bool) -> None:
    if _enabled:
        DEPENDENCY_READY.labels(dependency).set(1 if up else 0)


def dependency_call(dependency: str, operation: str, seconds: float, failed: bool) -> None:
    if _enabled:
        DEPENDENCY_SECONDS.labels(dependency, operation).observe(seconds)
        if failed:
            DEPENDENCY_ERRORS.labels(dependency, operation).inc()


@contextmanager
def observe(dependency: str, operation: str) -> Iterator[None]:
    """Time a call to `dependency` (a histogram) and trace it (a client span, when tracing is
    on). Costs two clock reads when both are off."""
    started = time.perf_counter()
    failed = True
    try:
        with tracing.client_span(f"{dependency} {operation}", dependency, operation):
            yield
        failed = False
    finally:
        dependency_call(dependency, operation, time.perf_counter() - started, failed)
