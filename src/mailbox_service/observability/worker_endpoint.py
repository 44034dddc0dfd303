"""The worker's /metrics: its own HTTP port (`metrics.worker_port`), served from a thread.

One worker process serves its own counters; a supervisor of several serves the sum of its
children's (multiprocess mode, see exposition.py). Either way the outbox gauges are added,
counted in MongoDB at scrape time (outbox_gauges.py).

A port that cannot be bound is logged as an error and the worker carries on without metrics:
delivering notifications matters more than counting them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import Collector

from mailbox_service.log import get_logger
from mailbox_service.observability.exposition import MULTIPROC_ENV, scrape_registry
from mailbox_service.observability.outbox_gauges import (
    SCRAPE_ERRORS,
    BacklogSource,
    OutboxCollector,
)
from mailbox_service.settings import MetricsSettings

log = get_logger(__name__)


@dataclass
class WorkerMetricsServer:
    server: WSGIServer
    thread: threading.Thread
    registered: tuple[Collector, ...]

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        for collector in self.registered:
            REGISTRY.unregister(collector)


def serve_worker_metrics(
    settings: MetricsSettings, outbox: BacklogSource
) -> WorkerMetricsServer | None:
    """Start the metrics port, or return None when metrics are off, the port is 0 or taken."""
    if not settings.enabled or settings.worker_port == 0:
        return None
    gauges = OutboxCollector(outbox, settings.outbox_refresh_s)
    shared = bool(os.environ.get(MULTIPROC_ENV))
    # This process's own scrape-error counter is not in the children's files: add it.
    extra: tuple[Collector, ...] = (gauges, SCRAPE_ERRORS) if shared else (gauges,)
    registry = scrape_registry(extra)
    try:
        server, thread = start_http_server(
            settings.worker_port, addr=settings.worker_host, registry=registry
        )
    except OSError as exc:
        if not shared:
            REGISTRY.unregister(gauges)
        log.error(
            "metrics.port_unavailable",
            port=settings.worker_port,
            host=settings.worker_host,
            error=str(exc),
            hint="set MAILBOX_METRICS_WORKER_PORT to a free port, or 0 for none",
        )
        return None
    log.info("metrics.serving", host=settings.worker_host, port=settings.worker_port)
    return WorkerMetricsServer(server, thread, () if shared else (gauges,))
