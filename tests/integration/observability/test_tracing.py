"""OpenTelemetry: one trace per ingested document across the API and the worker, and a
collector that does not answer never slows a request.

The API runs in-process and the worker's dramatiq consumers in threads of this process, both
wired as in production (create_app; the worker's broker, runtime and actors), so the SDK's
in-memory exporter sees every span of both sides. A last test runs real `serve` and `worker`
processes configured by MAILBOX_OTEL_ENDPOINT against a small OTLP/HTTP receiver.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app_fixtures import invoice_metadata, post_document, start_live_server, stop_process
from mailbox_service.asgi import create_app
from mailbox_service.notifications.actors import declare_actors
from mailbox_service.notifications.broker import make_broker
from mailbox_service.notifications.channels import CHANNELS, QUEUE
from mailbox_service.notifications.worker import WorkerRuntime
from mailbox_service.observability import tracing
from mailbox_service.settings import OtelSettings, Settings
from mailbox_service.wiring.services import Services
from notify_fixtures import WorkerProcess, eventually, wait_status


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(OtelSettings(), "test", exporter=exporter)
    yield exporter
    tracing.shutdown()


@pytest.fixture
def traced_worker(settings: Settings, spans: InMemorySpanExporter) -> Iterator[None]:
    """The worker's consumers in this process, with the trace middleware the worker installs."""
    broker = make_broker(settings.redis)
    broker.add_middleware(tracing.TraceMessages())
    runtime = WorkerRuntime.build(settings, broker, threads=2)
    declare_actors(broker, runtime.deliverer, settings.notify)
    # This test's jobs must not wait behind a backlog left in the test stack's queues (documents
    # ingested by earlier tests with no worker running); the outbox keeps those anyway.
    broker.flush_all()
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(
        broker, queues={QUEUE[c] for c in CHANNELS}, worker_threads=2, worker_timeout=100
    )
    worker.start()
    yield
    worker.stop(timeout=10_000)
    broker.close()
    runtime.close()


def _by_id(found: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in found if s.context is not None}


def _ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


class Lines(logging.Handler):
    """The structured events (dicts) logged on a logger, as structlog hands them over."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(record.msg)


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    lines = Lines()
    loggers = [
        logging.getLogger(name)
        for name in ("mailbox_service.ingestion.service", "mailbox_service.notifications.delivery")
    ]
    for logger in loggers:
        logger.addHandler(lines)
    yield lines
    for logger in loggers:
        logger.removeHandler(lines)


async def test_one_document_is_one_trace_across_api_and_worker(
    settings: Settings,
    services: Services,
    ingest_key: str,
    paperless_account: str,
    spans: InMemorySpanExporter,
    traced_worker: None,
    log_lines: Lines,
) -> None:
    async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
        response = await post_document(
            client,
            ingest_key,
            invoice_metadata(paperless_account),
        )
        assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    await wait_status(services, document_id, "email", "sent")
    await wait_status(services, document_id, "realtime", "sent")

    def consumers() -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.kind == SpanKind.CONSUMER
            and s.attributes is not None
            and s.attributes.get("mailbox.document_id") == document_id
        ]

    async def finished() -> list[ReadableSpan]:
        return consumers()

    await eventually(finished, lambda found: len(found) >= 2, what="both jobs' spans")
    found = list(spans.get_finished_spans())
    (server,) = [s for s in found if s.kind == SpanKind.SERVER and s.name == "POST /v1/documents"]
    trace_id = server.context.trace_id
    in_trace = [s for s in found if s.context is not None and s.context.trace_id == trace_id]
    names = [s.name for s in in_trace]

    # The API side: the request, its MongoDB and S3 calls, one enqueue per channel.
    assert "s3 put" in names
    assert "mongodb insert" in names
    assert names.count("redis enqueue") == 2
    # The worker side continues the same trace: each job under the enqueue that queued it,
    # and the SMTP send and Socket.IO emit under their jobs.
    jobs = {s.name: s for s in consumers()}
    assert set(jobs) == {"deliver_email process", "deliver_realtime process"}
    index = _by_id(in_trace)
    for job in jobs.values():
        assert job.context is not None
        assert job.context.trace_id == trace_id
        assert _ancestors(job, index)[:2] == ["redis enqueue", "POST /v1/documents"]
    (smtp,) = [s for s in in_trace if s.name == "smtp send"]
    assert _ancestors(smtp, index)[0] == "deliver_email process"
    (emit,) = [s for s in in_trace if s.name == "redis socketio_emit"]
    assert _ancestors(emit, index)[0] == "deliver_realtime process"
    worker_mongo = [
        s
        for s in in_trace
        if s.name.startswith("mongodb ") and "deliver_email process" in _ancestors(s, index)
    ]
    assert worker_mongo, "the worker's MongoDB calls are not in the trace"
    # Metrics never carry ids; traces may, and the server span names the route template.
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/documents"
    assert server.attributes["http.response.status_code"] == 201

    # Log lines inside a span carry its trace id, on both sides (and the request id in the API).
    mine = [e for e in log_lines.events if e.get("document_id") == document_id]
    ingested = [e for e in mine if e["event"] == "document.ingested"]
    sent = [e for e in mine if e["event"] == "notification.sent"]
    assert ingested, mine
    assert sent, mine
    trace_hex = format(trace_id, "032x")
    assert ingested[0]["trace_id"] == trace_hex
    assert ingested[0]["request_id"] == response.headers["x-request-id"]
    assert {e["trace_id"] for e in sent} == {trace_hex}


def _silent_collector() -> socket.socket:
    """A TCP port that accepts connections and never answers: the worst collector there is."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


async def test_unreachable_collector_never_slows_or_fails_a_request(
    settings: Settings,
    services: Services,
    ingest_key: str,
    paperless_account: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector = _silent_collector()
    port = collector.getsockname()[1]
    # Export every 100 ms, so exports hang (1 s each) while the requests below run.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    assert tracing.configure(
        OtelSettings(endpoint=f"http://127.0.0.1:{port}", export_timeout_s=1.0), "api"
    )
    try:
        async with AsyncTestClient(app=create_app(settings), timeout=30) as client:
            latencies: list[float] = []
            for _ in range(8):
                started = time.perf_counter()
                response = await post_document(
                    client, ingest_key, invoice_metadata(paperless_account, notify=False)
                )
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 201, response.text
                time.sleep(0.15)  # noqa: ASYNC251 - let the exporter try while we wait
        # The exporter did try to reach the collector: the requests ran beside hung exports.
        collector.setblocking(False)
        connection, _ = collector.accept()
        connection.close()
        assert max(latencies) < 0.9, latencies  # an export's timeout is 1 s
    finally:
        started = time.perf_counter()
        tracing.shutdown()
        shutdown_s = time.perf_counter() - started
        collector.close()
    assert shutdown_s < 5, f"shutdown waited {shutdown_s:.1f}s for a dead collector"


class OtlpReceiver:
    """A real OTLP/HTTP endpoint (protobuf over HTTP, as the exporter sends): records every
    span it is sent as (service name, trace id, span name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.append((service, span.trace_id.hex(), span.name))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_processes_export_one_trace_to_an_otlp_collector(
    test_env: dict[str, str],
    services: Services,
    ingest_key: str,
    paperless_account: str,
    tmp_path: Path,
) -> None:
    """The real configuration path: MAILBOX_OTEL_ENDPOINT on a `serve` and a `worker` process;
    both export over OTLP/HTTP, and the document's spans from both share one trace id."""
    receiver = OtlpReceiver()
    env = {"MAILBOX_OTEL_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    server = start_live_server(tmp_path, env)
    worker = WorkerProcess(tmp_path, extra_env=env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            response = await post_document(http, ingest_key, invoice_metadata(paperless_account))
        assert response.status_code == 201, response.text
        await wait_status(services, response.json()["id"], "email", "sent")

        async def exported() -> list[tuple[str, str, str]]:
            return list(receiver.spans)

        def complete(spans: list[tuple[str, str, str]]) -> bool:
            # The job's span ends after its SMTP child, so it may come in a later export batch:
            # wait for both.
            posts = {t for s, t, n in spans if n == "POST /v1/documents"}
            worker_spans = {(t, n) for s, t, n in spans if s == "mailbox-service-worker"}
            return any(
                (t, "smtp send") in worker_spans and (t, "deliver_email process") in worker_spans
                for t in posts
            )

        spans = await eventually(exported, complete, within=20, what="both processes' spans")
    finally:
        worker.stop()
        stop_process(server.process)
        receiver.close()
    post_traces = {t for s, t, n in spans if n == "POST /v1/documents"}
    (trace_id,) = {t for s, t, n in spans if n == "smtp send" and t in post_traces}
    in_trace = {(s, n) for s, t, n in spans if t == trace_id}
    assert ("mailbox-service-api", "POST /v1/documents") in in_trace
    assert ("mailbox-service-api", "s3 put") in in_trace
    assert ("mailbox-service-worker", "deliver_email process") in in_trace
    assert ("mailbox-service-worker", "smtp send") in in_trace
