"""Fixtures for tests that use the service against the real local stack.

Loaded as a pytest plugin from conftest.py. Everything here depends on the `stack` fixture,
which starts the real servers and exports their MAILBOX_* variables.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_service.asgi import create_app
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings, load_settings
from mailbox_service.wiring.services import Services

TEST_JWT_SECRET = "test-only-hs256-secret-0123456789abcdef"

# Settings every test process (and subprocess) shares on top of the stack's connection vars.
TEST_ENV = {
    "MAILBOX_AUTH_JWT_SECRET": TEST_JWT_SECRET,
    "MAILBOX_AUTH_ISSUER": "mailbox-test",
    "MAILBOX_PORTAL_URL": "http://portal.test/portal",
    "MAILBOX_LOG_FORMAT": "json",
    # Revocation tests need every request to see the database; the cache has its own test.
    "MAILBOX_AUTH_API_KEY_CACHE_S": "0",
    "MAILBOX_NOTIFY_MIN_BACKOFF_MS": "200",
    "MAILBOX_NOTIFY_MAX_BACKOFF_MS": "2000",
    "MAILBOX_NOTIFY_SWEEP_INTERVAL_S": "1",
    "MAILBOX_NOTIFY_SWEEP_GRACE_S": "2",
    # Workers started by tests must not purge the shared test database under other tests'
    # feet (backfilled documents may be past retention); test_retention.py runs the purge,
    # and the worker's daily check, in a database of its own.
    "MAILBOX_RETENTION_PURGE_INTERVAL_S": "0",
    # Nor send reminders or print unread letters from it: test_reminders.py runs those passes
    # in a database of its own.
    "MAILBOX_REMINDER_INTERVAL_S": "0",
    "MAILBOX_ACKNOWLEDGEMENT_INTERVAL_S": "0",
    # The suite sends thousands of requests from one address and one token subject: budgets
    # far above that keep the limiter on the path of every request without ever tripping it.
    # The rate-limit tests build apps with small budgets of their own.
    "MAILBOX_RATE_INGEST_PER_MINUTE": "1000000",
    "MAILBOX_RATE_PORTAL_PER_MINUTE": "1000000",
    "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": "1000000",
    "MAILBOX_RATE_SOCKETS_PER_ADDRESS": "10000",
    "MAILBOX_RATE_SOCKETS_PER_USER": "10000",
    # Workers started by tests open no metrics port unless the test asks for one: several
    # test sessions share this machine, and a fixed port would be taken by the first.
    "MAILBOX_METRICS_WORKER_PORT": "0",
}


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def invoice_metadata(account_id: str, **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "type": "invoice",
        "source_ref": unique("ref"),
        "account_id": account_id,
        "attributes": {
            "invoice_number": unique("INV"),
            "total_amount": "84.20",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
    }
    meta.update(overrides)
    return meta


def sample_pdf(text: str = "sample", padding: int = 0) -> bytes:
    return render_pdf([text], title="Test document", padding=padding)


async def post_document(
    client: httpx.AsyncClient | AsyncTestClient[Any],
    key: str,
    metadata: dict[str, Any] | bytes | str,
    content: bytes | None = None,
    filename: str = "document.pdf",
) -> httpx.Response:
    meta = metadata if isinstance(metadata, bytes | str) else json.dumps(metadata)
    files = {
        "metadata": (None, meta, "application/json"),
        "file": (filename, content if content is not None else sample_pdf(), "application/pdf"),
    }
    return await client.post(
        "/v1/documents", files=files, headers={"Authorization": f"Bearer {key}"}
    )


async def ingested_id(
    client: httpx.AsyncClient | AsyncTestClient[Any],
    key: str,
    metadata: dict[str, Any],
    content: bytes | None = None,
) -> str:
    """POST a document that must be accepted, and answer its id."""
    response = await post_document(client, key, metadata, content)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(scope="session")
def test_env(stack: Any) -> dict[str, str]:
    os.environ.update(TEST_ENV)
    return {k: v for k, v in os.environ.items() if k.startswith("MAILBOX_")}


@pytest.fixture(scope="session")
def settings(test_env: dict[str, str]) -> Settings:
    loaded = load_settings()
    return msgspec.structs.replace(
        loaded, mongo=msgspec.structs.replace(loaded.mongo, url=polled(loaded.mongo.url))
    )


def polled(mongo_url: str) -> str:
    """The test process's MongoDB URL with heartbeats polled rather than streamed.

    The session's clients live on one event loop, and sync tests and fixtures (CLI runs,
    server start-ups) leave it stopped for many seconds. A streamed heartbeat is always in
    flight, so such a pause times it out, and pymongo then cancels every operation in use on
    that server (CI failed once on exactly this). A polled heartbeat is in flight for about a
    millisecond every ten seconds.
    """
    if "?" in mongo_url:
        return f"{mongo_url}&serverMonitoringMode=poll"
    hosts_end = "" if "/" in mongo_url.partition("://")[2] else "/"
    return f"{mongo_url}{hosts_end}?serverMonitoringMode=poll"


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = Services.build(settings)
    ctx = MigrationContext(settings, services.database, services.blobs)
    await Migrator(ctx, migrations_dir()).apply_pending()
    yield services
    await services.close()


@pytest.fixture(scope="session")
async def client(settings: Settings, services: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    """The whole ASGI app in-process, on the real stack."""
    async with AsyncTestClient(app=create_app(settings), timeout=30) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def ingest_key(services: Services) -> str:
    _, secret = await services.api_keys.create("test-ingest", ["ingest"])
    return secret


@pytest.fixture(scope="session")
async def admin_key(services: Services) -> str:
    _, secret = await services.api_keys.create("test-admin", ["admin"])
    return secret


@pytest.fixture
async def paperless_account(services: Services) -> str:
    """A fresh account with paperless consent and an email address."""
    account_id = unique("acct")
    await services.accounts.update(
        account_id, by="test", paperless=True, email=f"{account_id}@example.org", locale="en"
    )
    return account_id


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `mailbox-service ARGS` as a real subprocess, as an operator would."""
    result = subprocess.run(
        [sys.executable, "-m", "mailbox_service", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=input,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"mailbox-service {' '.join(args)} exited {result.returncode}\n{result.stderr}"
        )
    return result


class LiveServer:
    """`mailbox-service serve` in a subprocess: real HTTP, real Socket.IO."""

    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"


def start_live_server(tmp_dir: Path, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    log = tmp_dir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(extra_env or {})},
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return LiveServer(port, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"serve did not become live:\n{log.read_text()}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a child; when it leads its own process group, stop the whole group with it."""
    try:
        leads_group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        process.wait()
        return

    def signal_all(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if leads_group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    signal_all(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        signal_all(signal.SIGKILL)
        process.wait()
    if leads_group:
        signal_all(signal.SIGKILL)  # children that outlived their parent


@pytest.fixture(scope="session")
def live_server(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp("live"))
    yield server
    stop_process(server.process)


MakePdf = Callable[..., bytes]
