"""Request rate and latency by route template and status, with Litestar's Prometheus support.

Two changes to Litestar's Prometheus middleware (same metric names and labels):

- Litestar turns an exception into its error response outside the route's middleware, so the
  stock middleware counts a request that raised (every 4xx of ours) with the status it started
  with, 200. Here it is counted with the status the error handler will answer.
- Labels come straight from the ASGI scope and each label combination's child metric is kept,
  instead of building a Request and looking the children up (under a lock) four times per
  request: that was most of what metrics cost the ingest bench.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import Message, Receive, Scope, Send

from mailbox_service.errors import MailboxError
from mailbox_service.observability.metrics import HTTP_PREFIX, LATENCY_BUCKETS

APP_NAME = "mailbox"


def status_of(exc: BaseException) -> int:
    if isinstance(exc, MailboxError | HTTPException):
        return int(exc.status_code)
    return 500


class RouteMetricsMiddleware(PrometheusMiddleware):
    _children: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def _child(self, kind: str, method: str, path: str, status: int) -> Any:
        key = (kind, method, path, status)
        child = self._children.get(key)
        if child is None:
            labels: dict[str, str | int | float] = {
                "method": method,
                "path": path,
                "status_code": status,
                "app_name": APP_NAME,
            }
            family = {
                "in_progress": self.requests_in_progress,
                "count": self.request_count,
                "time": self.request_time,
                "errors": self.requests_error_count,
            }[kind](labels)
            child = self._children[key] = family.labels(*labels.values())
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method") or scope["type"])
        # The route template (group_path): never a path with an id in it.
        path = str(scope.get("path_template") or scope["path"])
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 200, "ended": 0.0}

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["ended"] = time.perf_counter()
            await send(message)

        in_progress = self._child("in_progress", method, path, 200)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_observed)
        except BaseException as exc:
            seen["status"] = status_of(exc)
            raise
        finally:
            in_progress.dec()
            status = int(seen["status"])
            duration = (seen["ended"] or time.perf_counter()) - started
            if status >= 500:
                self._child("errors", method, path, status).inc()
            self._child("count", method, path, status).inc()
            self._child("time", method, path, status).observe(duration)


def route_metrics_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name=APP_NAME,
        prefix=HTTP_PREFIX,
        group_path=True,
        buckets=list(LATENCY_BUCKETS),
        exclude=["^/metrics$"],
        middleware_class=RouteMetricsMiddleware,
    )
