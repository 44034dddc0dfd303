"""OpenTelemetry traces, one trace per document: the ingest request, its MongoDB and S3 calls,
the enqueue, the worker's job (its context travels in the dramatiq message's options) and the
worker's own MongoDB, SMTP and Socket.IO calls.

Off unless `MAILBOX_OTEL_ENDPOINT` is set (or a test passes an exporter): then no tracer
exists, every helper here returns at its first line, no middleware is installed and no
context is put into messages. On, spans go to the OTLP/HTTP endpoint through a batch
processor: a background thread exports them, a full queue drops spans instead of waiting, and
an export gives up after `otel.export_timeout_s`, so an unreachable collector never slows or
fails a request.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping
from contextlib import nullcontext
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from mailbox_service.settings import OtelSettings

MESSAGE_OPTION = "trace_context"
"""dramatiq message option that carries the W3C `traceparent` from producer to worker."""

_tracer: Tracer | None = None
_provider: TracerProvider | None = None


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` → `http://collector:4318/v1/traces` (a full URL is kept)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def configure(
    settings: OtelSettings, service_name: str, *, exporter: SpanExporter | None = None
) -> bool:
    """Turn tracing on when an endpoint is set or `exporter` is given (tests: the SDK's
    in-memory exporter, exported synchronously). True when tracing is on."""
    global _tracer, _provider
    if not settings.endpoint and exporter is None:
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"{settings.service_name}-{service_name}"})
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        timeout_ms = int(settings.export_timeout_s * 1000)
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=traces_url(settings.endpoint), timeout=settings.export_timeout_s
                ),
                max_queue_size=4096,
                export_timeout_millis=timeout_ms,
            )
        )
    if _provider is not None:
        _provider.shutdown()
    _provider = provider
    _tracer = provider.get_tracer("mailbox_service")
    return True


def shutdown() -> None:
    """Flush and stop (process exit, or a test that turned tracing on)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


def client_span(name: str, dependency: str, operation: str) -> Any:
    """A CLIENT span around a call to a backing service; a no-op when tracing is off."""
    if _tracer is None:
        return nullcontext()
    return _tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={"mailbox.dependency": dependency, "mailbox.operation": operation},
    )


def start_client_span(name: str, attributes: dict[str, Any]) -> trace.Span | None:
    """A CLIENT span the caller ends itself (MongoDB command events start and end apart)."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def inject_into(options: MutableMapping[str, Any]) -> None:
    """Put the current trace context into a dramatiq message's options (when tracing)."""
    if _tracer is None:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if carrier:
        options[MESSAGE_OPTION] = carrier


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current trace and span id on every line logged inside a span."""
    if _tracer is None:
        return event
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event["trace_id"] = format(span_context.trace_id, "032x")
        event["span_id"] = format(span_context.span_id, "016x")
    return event


def mark_failed(span: trace.Span) -> None:
    span.set_status(Status(StatusCode.ERROR))


class TraceRequests:
    """Litestar middleware: one SERVER span per request, named by the route template (never a
    path with an id in it), continuing a caller's `traceparent` when it sends one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _tracer is None or scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        route = scope.get("path_template") or "unmatched"
        method = str(scope.get("method", "GET"))
        with _tracer.start_as_current_span(
            f"{method} {route}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, send_traced)


class TraceMessages(dramatiq.Middleware):
    """Worker side: each job runs inside a CONSUMER span that continues the producer's trace.

    dramatiq calls before/after_process_message on the worker thread that runs the job, so the
    context is attached and detached on that thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if _tracer is None:
            return
        parent = propagate.extract(message.options.get(MESSAGE_OPTION) or {})
        span = _tracer.start_span(
            f"{message.actor_name} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "mailbox.actor": message.actor_name,
                # Traces may name the document (metrics never do): it is what operators search.
                "mailbox.document_id": str(message.args[0]) if message.args else "",
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        self._local.current = (span, token)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        current = getattr(self._local, "current", None)
        if current is None:
            return
        self._local.current = None
        span, token = current
        if exception is not None:
            span.record_exception(exception)
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
