"""Metrics, request ids and the worker's metrics port, against the real stack and processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import socketio
from litestar.testing import AsyncTestClient

from app_fixtures import (
    LiveServer,
    free_port,
    invoice_metadata,
    post_document,
    sample_pdf,
    start_live_server,
    stop_process,
    unique,
)
from mailbox_devtools.demo.archive import ArchiveSpec, write_archive
from mailbox_fixtures import portal_token
from mailbox_service.asgi import create_app
from mailbox_service.clock import utcnow
from mailbox_service.observability.outbox_gauges import ChannelBacklog, measure
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import connect_blocking, documents_collection
from mailbox_service.storage.outbox import Outbox
from mailbox_service.wiring.services import Services
from metrics_scrape import Samples, parse, scrape, value
from notify_fixtures import WorkerProcess, eventually, wait_status

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_nothing_private(text: str, *secrets: str) -> None:
    """No id, address, key or reference of ours in a metrics page; paths are templates."""
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into /metrics"
    assert "@" not in text, "an email address leaked into /metrics"
    for path in re.findall(r'path="([^"]*)"', text):
        assert re.fullmatch(r"[/a-z0-9_\-.{}:]*", path), path
        assert not re.search(r"/[0-9A-Za-z]{20,}", path), f"an id in path label {path!r}"


# -- request ids ------------------------------------------------------------------------------


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[Any]) -> None:
    given = "order-42.batch:7_a-b"
    response = await client.get("/health/live", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given

    made = (await client.get("/health/live")).headers["x-request-id"]
    assert HEX_ID.match(made)
    assert made != (await client.get("/health/live")).headers["x-request-id"]

    # Unsafe or oversized ids are replaced, not echoed (no header or log-line forging).
    for bad in ("has space", 'quote"', "x" * 129, "-leading-dash", "\u00e9".encode()):
        hostile: dict[str, Any] = {"X-Request-ID": bad}  # httpx sends a bytes value as is
        echoed = (await client.get("/health/live", headers=hostile)).headers["x-request-id"]
        assert HEX_ID.match(echoed), (bad, echoed)
    longest = "a" * 128
    assert (await client.get("/health/live", headers={"X-Request-ID": longest})).headers[
        "x-request-id"
    ] == longest


async def test_error_envelope_carries_the_request_id(client: AsyncTestClient[Any]) -> None:
    unauthenticated = await client.get("/v1/mailbox/documents", headers={"X-Request-ID": "r-401"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["request_id"] == "r-401"
    assert unauthenticated.headers["x-request-id"] == "r-401"

    missing = await client.get("/no/such/route")  # a 404 outside any route handler
    assert missing.status_code == 404
    body = missing.json()["error"]
    assert body["request_id"] == missing.headers["x-request-id"]
    assert HEX_ID.match(body["request_id"])


# -- API metrics --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_server(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    server = start_live_server(tmp_path_factory.mktemp("metrics"))
    yield server
    stop_process(server.process)


def _ingest_over_http(server: LiveServer, key: str, meta: dict[str, Any], request_id: str) -> str:
    response = httpx.post(
        f"{server.url}/v1/documents",
        files={
            "metadata": (None, json.dumps(meta), "application/json"),
            "file": ("document.pdf", sample_pdf(), "application/pdf"),
        },
        headers={"Authorization": f"Bearer {key}", "X-Request-ID": request_id},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == request_id
    return str(response.json()["id"])


def _log_lines(log: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_metrics_move_after_one_ingest_and_expose_nothing_private(
    metrics_server: LiveServer, ingest_key: str, paperless_account: str
) -> None:
    url = f"{metrics_server.url}/metrics"
    _, before = scrape(url)
    meta = invoice_metadata(paperless_account)
    document_id = _ingest_over_http(metrics_server, ingest_key, meta, "ingest-metrics-1")
    # A portal read of that document id, so an id-bearing path would have a chance to leak.
    async with httpx.AsyncClient(base_url=metrics_server.url) as http:
        assert (await http.get(f"/v1/mailbox/documents/{document_id}")).status_code == 401

    deadline = time.monotonic() + 5
    while True:  # the ingest counter moves in the background task after the 201
        text, after = scrape(url)
        moved = value(after, "mailbox_documents_ingested_total", type="invoice", origin="api")
        if moved > value(before, "mailbox_documents_ingested_total", type="invoice", origin="api"):
            break
        assert time.monotonic() < deadline, "mailbox_documents_ingested_total did not move"
        await asyncio.sleep(0.1)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mailbox_documents_ingested_total", type="invoice", delivery="digital") == 1
    request = {"method": "POST", "path": "/v1/documents", "status_code": "201"}
    assert grew("mailbox_http_requests_total", **request) == 1
    assert grew("mailbox_http_request_duration_seconds_count", **request) == 1
    # The id-bearing read is counted under its route template.
    assert (
        grew(
            "mailbox_http_requests_total",
            path="/v1/mailbox/documents/{document_id}",
            status_code="401",
        )
        == 1
    )
    # The ingest's dependency calls: S3 put, MongoDB insert, Redis enqueue (one per channel).
    s3 = "mailbox_dependency_duration_seconds_count"
    assert grew(s3, dependency="s3", operation="put") == 1
    assert grew(s3, dependency="mongodb", operation="insert") >= 1
    assert grew(s3, dependency="redis", operation="enqueue") == 2
    assert_nothing_private(text, document_id, paperless_account, ingest_key, meta["source_ref"])

    # Every log line of that request carries its id.
    lines = [
        line
        for line in _log_lines(metrics_server.log)
        if line.get("event") == "document.ingested" and line.get("document_id") == document_id
    ]
    assert lines, "no JSON document.ingested line"
    assert lines[0]["request_id"] == "ingest-metrics-1"


async def test_metrics_token_guards_the_api_metrics(settings: Settings, services: Services) -> None:
    guarded = msgspec.structs.replace(
        settings, metrics=msgspec.structs.replace(settings.metrics, token="scrape-secret-1")
    )
    async with AsyncTestClient(app=create_app(guarded), timeout=30) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"})
        assert allowed.status_code == 200
        assert "mailbox_http_requests_total" in allowed.text
        assert "scrape-secret-1" not in allowed.text
        # /metrics is for operators, not integrators: not in the API contract.
        schema = (await client.get("/schema/openapi.json")).json()
        assert "/metrics" not in schema["paths"]


# -- worker metrics -----------------------------------------------------------------------------


def _worker_samples(port: int) -> tuple[str, Samples]:
    return scrape(f"http://127.0.0.1:{port}/metrics")


@pytest.mark.parametrize("processes", [1, 2])
async def test_worker_port_serves_delivery_counters(
    processes: int,
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    tmp_path: Path,
) -> None:
    port = free_port()
    worker = WorkerProcess(
        tmp_path,
        extra_env={
            "MAILBOX_METRICS_WORKER_PORT": str(port),
            "MAILBOX_METRICS_OUTBOX_REFRESH_S": "0",
        },
        args=("--processes", str(processes)),
    ).start()
    try:
        meta = invoice_metadata(paperless_account)
        response = await post_document(client, ingest_key, meta)
        assert response.status_code == 201, response.text
        document_id = response.json()["id"]
        await wait_status(services, document_id, "email", "sent")
        await wait_status(services, document_id, "realtime", "sent")

        deadline = time.monotonic() + 10
        while True:  # each channel's counter is written after its outcome is recorded
            text, samples = _worker_samples(port)
            sent = value(samples, "mailbox_notifications_total", channel="email", status="sent")
            emitted = value(
                samples, "mailbox_notifications_total", channel="realtime", status="sent"
            )
            if (sent >= 1 and emitted >= 1) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert sent >= 1
        assert emitted >= 1
        assert value(samples, "mailbox_notification_duration_seconds_count", channel="email") >= 1
        count = "mailbox_dependency_duration_seconds_count"
        assert value(samples, count, dependency="smtp", operation="send") >= 1
        assert value(samples, count, dependency="redis", operation="socketio_emit") >= 1
        assert value(samples, count, dependency="mongodb", operation="findAndModify") >= 1
        # The outbox gauges, counted in MongoDB at scrape time.
        for channel in ("email", "realtime"):
            assert ("mailbox_outbox_pending", frozenset({("channel", channel)})) in samples
            oldest = samples[
                ("mailbox_outbox_oldest_pending_seconds", frozenset({("channel", channel)}))
            ]
            assert oldest >= 0
        assert_nothing_private(text, document_id, paperless_account, meta["source_ref"])
    finally:
        worker.stop()
    if processes > 1:
        assert "metrics.serving" in worker.output()


async def test_socketio_connections_gauge_follows_sessions(
    metrics_server: LiveServer, settings: Settings
) -> None:
    url = f"{metrics_server.url}/metrics"

    def connections() -> float:
        return value(scrape(url)[1], "mailbox_socketio_connections")

    before = connections()
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(2)]
    refused = socketio.AsyncClient(reconnection=False)
    try:
        for index, sio in enumerate(clients):
            token = portal_token(settings, f"acct-gauge-{index}", sub=f"gauge-{index}")
            await sio.connect(
                metrics_server.url, auth={"token": token}, transports=["websocket"], wait_timeout=5
            )
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(
                metrics_server.url, auth={"token": "bad"}, transports=["websocket"], wait_timeout=5
            )
        assert connections() == before + 2  # a refused session is not counted
    finally:
        for sio in clients:
            if sio.connected:
                await sio.disconnect()

    async def probe() -> float:
        return connections()

    await eventually(probe, lambda now: now == before, within=10, what="the gauge to drop")


SERVE = (sys.executable, "-m", "mailbox_service", "serve")
BACKFILL = (sys.executable, "-m", "mailbox_service", "backfill")


def _serve_with_workers(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*SERVE, "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
            start_new_session=True,
        )


async def test_serve_with_two_workers_reports_the_sum_of_both(
    test_env: dict[str, str], services: Services, tmp_path: Path
) -> None:
    """`serve --workers 2`: whichever process answers a scrape reports both processes' counts."""
    port = free_port()
    process = _serve_with_workers(port, 2, tmp_path / "serve-workers.log")
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:

            async def live() -> int:
                try:
                    return (await http.get("/health/live")).status_code
                except httpx.HTTPError:
                    return 0

            await eventually(live, lambda status: status == 200, within=30, what="serve to start")
            for _ in range(30):
                # A new connection each time, so both processes take some of them.
                async with httpx.AsyncClient(base_url=url, timeout=5) as fresh:
                    assert (await fresh.get("/health/live")).status_code == 200
            totals = set()
            for _ in range(6):
                async with httpx.AsyncClient(base_url=url, timeout=5) as fresh:
                    text = (await fresh.get("/metrics")).text
                totals.add(
                    value(
                        parse(text),
                        "mailbox_http_requests_total",
                        path="/health/live",
                        status_code="200",
                    )
                )
        # At least 31 (the waits for start-up count too), and the same from every process.
        assert len(totals) == 1, totals
        assert totals.pop() >= 31
    finally:
        stop_process(process)


def test_backfill_serves_its_counts_while_it_runs(test_env: dict[str, str], tmp_path: Path) -> None:
    """`backfill --metrics-port`: documents counted with origin=backfill, scraped mid-run."""
    spec = ArchiveSpec(
        count=80, accounts=2, until=dt.date.today(), size_kib=2, ref_prefix=unique("obs")
    )
    manifest = write_archive(tmp_path / "archive", spec).manifest
    port = free_port()
    args = [*BACKFILL, str(manifest), "--source", unique("bf"), "--metrics-port", str(port)]
    args += ["--concurrency", "1", "--batch-size", "1", "--no-checkpoint"]
    args += ["--errors", str(tmp_path / "errors.jsonl")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = 0.0
    try:
        while process.poll() is None and not seen:
            try:
                text, samples = scrape(f"http://127.0.0.1:{port}/metrics")
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            seen = value(samples, "mailbox_documents_ingested_total", origin="backfill")
            if seen:
                assert value(samples, "mailbox_documents_ingested_total", origin="api") == 0
                s3 = value(samples, "mailbox_dependency_duration_seconds_count", dependency="s3")
                assert s3 >= seen
                assert_nothing_private(text, spec.prefix)
    finally:
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode(errors="replace")
    assert seen >= 1, "the backfill's metrics port never showed a document"


def test_outbox_gauges_count_undelivered_and_age_the_oldest(
    test_env: dict[str, str], settings: Settings
) -> None:
    """measure() on a collection with the outbox indexes: pending and sending count, sent and
    skipped do not; the age is the oldest undelivered document's."""
    client = connect_blocking(settings.mongo, pool_size=2)
    collection = documents_collection(client, settings.mongo.database).database[unique("outbox")]
    try:
        outbox = Outbox(collection, lease=dt.timedelta(seconds=settings.notify.lease_s))
        outbox.ensure_indexes()
        now = utcnow()

        def doc(email: str, realtime: str, age_s: int) -> dict[str, Any]:
            return {
                "_id": unique("d"),
                "created_at": now - dt.timedelta(seconds=age_s),
                "notifications": {"email": {"status": email}, "realtime": {"status": realtime}},
            }

        collection.insert_many(
            [
                doc("pending", "sent", 30),
                doc("sending", "sent", 700),
                doc("sent", "pending", 5000),  # old, but its email is done
                doc("failed", "skipped", 9000),
            ]
        )
        backlog = measure(outbox, now)
        assert backlog["email"].pending == 2
        assert backlog["email"].oldest_seconds == pytest.approx(700, abs=1)
        assert backlog["realtime"].pending == 1
        assert backlog["realtime"].oldest_seconds == pytest.approx(5000, abs=1)

        collection.update_many({}, {"$set": {"notifications.email.status": "sent"}})
        assert measure(outbox, now)["email"] == ChannelBacklog(0, 0.0)
    finally:
        collection.drop()
        client.close()
