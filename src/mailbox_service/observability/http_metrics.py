"""Request rate and latency by route template and status, with Litestar's Prometheus support.

Litestar turns an exception into its error response outside the route's middleware, so its
Prometheus middleware would count a request that raised (every 4xx of ours) with the status it
started with, 200. This subclass counts it with the status the error handler will answer.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.connection import Request
from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import Receive, Scope, Send

from mailbox_service.errors import MailboxError
from mailbox_service.observability.metrics import HTTP_PREFIX, LATENCY_BUCKETS


def status_of(exc: BaseException) -> int:
    if isinstance(exc, MailboxError | HTTPException):
        return int(exc.status_code)
    return 500


class RouteMetricsMiddleware(PrometheusMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request[Any, Any, Any](scope, receive)
        labels = {**self._get_default_labels(request), **self._get_extra_labels(request)}
        span: dict[str, Any] = {
            "start_time": time.perf_counter(),
            "duration": 0,
            "status_code": 200,
        }
        in_progress = self.requests_in_progress(labels).labels(*labels.values())
        in_progress.inc()
        try:
            await self.app(scope, receive, self._get_wrapped_send(send, span))
        except BaseException as exc:
            span["status_code"] = status_of(exc)
            span["duration"] = time.perf_counter() - span["start_time"]
            raise
        finally:
            in_progress.dec()
            labels["status_code"] = span["status_code"]
            values = [*labels.values()]
            if span["status_code"] >= 500:
                self.requests_error_count(labels).labels(*values).inc()
            self.request_count(labels).labels(*values).inc()
            self.request_time(labels).labels(*values).observe(span["duration"])


def route_metrics_config() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="mailbox",
        prefix=HTTP_PREFIX,
        group_path=True,  # the route template, never a path with an id in it
        buckets=list(LATENCY_BUCKETS),
        exclude=["^/metrics$"],
        middleware_class=RouteMetricsMiddleware,
    )
