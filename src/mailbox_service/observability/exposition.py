"""Serving /metrics: on the API beside the routes, in the worker on its own port.

With several processes (`serve --workers N`, `worker --processes N`) the parent points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before starting its children; each child's
prometheus_client then writes its values there, and a scrape adds them up
(`MultiProcessCollector`), whichever process answers it.
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile
from typing import Any

from litestar import Controller, Request, Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from mailbox_service.errors import Unauthenticated
from mailbox_service.settings import MetricsSettings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The `_created` timestamp series double every counter's output and nobody alerts on them.
disable_created_metrics()  # type: ignore[no-untyped-call]


def prepare_multiprocess(owner: str) -> str:
    """Give the children about to be started a fresh shared metrics directory (the parent
    process calls this before starting them). An operator's own directory is kept."""
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        return existing
    path = tempfile.mkdtemp(prefix=f"mailbox-metrics-{owner}-")
    os.environ[MULTIPROC_ENV] = path
    return path


def remove_multiprocess_dir(path: str) -> None:
    if os.environ.get(MULTIPROC_ENV) == path and path.startswith(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)


def child_died(pid: int) -> None:
    """Drop a dead child's live gauges (Socket.IO connections) from the sums."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def scrape_registry(extra: tuple[Collector, ...] = ()) -> CollectorRegistry:
    """The registry a scrape reads: this process's, or every child's in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        for collector in extra:
            registry.register(collector)
        return registry
    for collector in extra:
        REGISTRY.register(collector)
    return REGISTRY


def _bearer(request: Request[Any, Any, Any]) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def metrics_controller(settings: MetricsSettings) -> type[Controller]:
    """GET /metrics (Prometheus text format); a bearer token when `metrics.token` is set."""
    token = settings.token.encode()

    class MetricsController(Controller):
        path = "/metrics"
        include_in_schema = False

        @get(operation_id="metrics", exclude_from_auth=True, cache=False)
        async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
            if token and not hmac.compare_digest(_bearer(request).encode(), token):
                raise Unauthenticated("metrics: a valid bearer token (metrics.token) is required")
            body = generate_latest(scrape_registry())
            return Response(body, media_type=CONTENT_TYPE_LATEST)

    return MetricsController
