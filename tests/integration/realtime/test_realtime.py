"""Socket.IO at /socket.io of a real `mailbox-service serve` process, rooms shared via Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
import socketio

from app_fixtures import (
    LiveServer,
    invoice_metadata,
    post_document,
    start_live_server,
    stop_process,
    unique,
)
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.realtime.emitter import BlockingRealtimeEmitter, RealtimeEmitter
from mailbox_service.settings import Settings

EVENT_TIMEOUT = 15.0
QUIET = 0.7  # how long we listen to be sure an event does NOT arrive


class Listener:
    """A portal client: connects with a token and records what it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[dict[str, Any]]] = {
            "document.created": asyncio.Queue(),
            "document.updated": asyncio.Queue(),
        }
        self.refusals: list[Any] = []
        self.disconnected = asyncio.Event()
        for name, queue in self.events.items():
            self.client.on(name, queue.put_nowait)
        self.client.on("connect_error", self.refusals.append)
        self.client.on("disconnect", lambda *_: self.disconnected.set())

    async def connect(self, url: str, token: str | None) -> None:
        auth = {"token": token} if token is not None else None
        await self.client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)

    async def next(self, event: str, wait_s: float = EVENT_TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.events[event].get(), wait_s)

    async def nothing(self, event: str) -> bool:
        try:
            await asyncio.wait_for(self.events[event].get(), QUIET)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


@pytest.fixture
async def listeners() -> AsyncIterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        await listener.close()


async def connected(made: list[Listener], url: str, token: str) -> Listener:
    listener = Listener()
    await listener.connect(url, token)
    made.append(listener)
    return listener


def stored_doc(account_id: str) -> dict[str, Any]:
    """A document as MongoDB holds it, internal fields included."""
    return {
        "_id": unique("doc"),
        "type": "invoice",
        "account_id": account_id,
        "title": "Invoice 7",
        "summary": {"total_amount": "1.00", "currency": "EUR"},
        "issued_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        "fingerprint": "internal",
        "blob": {"key": "documents/xx/yy"},
        "read_at": None,
        "archived_at": None,
    }


@pytest.fixture(scope="module")
def second_node(
    live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Another API process: its clients must get events caused on the first one."""
    server = start_live_server(tmp_path_factory.mktemp("node2"))
    yield server
    stop_process(server.process)


def _wrong_audience(settings: Settings) -> str:
    now = int(time.time())
    claims = {
        "sub": "x",
        "accounts": ["A1"],
        "aud": "billing",
        "iss": settings.auth.issuer,
        "exp": now + 600,
    }
    return jwt.encode(claims, settings.auth.jwt_secret, algorithm="HS256")


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "expired", "wrong-audience"])
async def test_connections_without_a_valid_token_are_refused(
    live_server: LiveServer, settings: Settings, kind: str
) -> None:
    token = {
        "missing": None,
        "empty": "",
        "garbage": "garbage",
        "expired": portal_token(settings, "A1", ttl_s=-120),
        "wrong-audience": _wrong_audience(settings),
    }[kind]
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.connect(live_server.url, token)
    assert listener.refusals, "the server must answer with connect_error"
    assert "unauthorized" in str(listener.refusals[0])
    assert not listener.client.connected


async def test_created_reaches_exactly_the_accounts_room(
    live_server: LiveServer, settings: Settings, listeners: list[Listener]
) -> None:
    a, b = unique("acct"), unique("acct")
    alice = await connected(listeners, live_server.url, portal_token(settings, a, sub="alice"))
    bob = await connected(listeners, live_server.url, portal_token(settings, b, sub="bob"))
    carol = await connected(listeners, live_server.url, portal_token(settings, b, a, sub="carol"))
    doc = stored_doc(a)

    emitter = RealtimeEmitter(settings.redis.url)
    try:
        await emitter.emit_created(doc)
    finally:
        await emitter.close()

    for listener in (alice, carol):
        assert await listener.next("document.created") == {
            "id": doc["_id"],
            "type": "invoice",
            "account_id": a,
            "title": "Invoice 7",
            "summary": {"total_amount": "1.00", "currency": "EUR"},
            "issued_at": "2026-01-02T00:00:00Z",
        }
    assert await bob.nothing("document.created")


async def test_blocking_emitter_works_from_a_worker_thread(
    live_server: LiveServer, settings: Settings, listeners: list[Listener]
) -> None:
    account = unique("acct")
    client = await connected(listeners, live_server.url, portal_token(settings, account))
    doc = stored_doc(account)
    emitter = BlockingRealtimeEmitter(settings.redis.url)
    thread = threading.Thread(target=emitter.emit_updated, args=({**doc, "read_at": None},))
    thread.start()
    thread.join(10)
    emitter.close()
    assert await client.next("document.updated") == {
        "id": doc["_id"],
        "account_id": account,
        "read_at": None,
        "archived": False,
        "archived_at": None,
        "first_downloaded_at": None,
        "status": None,
        "status_at": None,
    }


async def test_emitter_raises_when_redis_is_unreachable() -> None:
    emitter = RealtimeEmitter("redis://127.0.0.1:1/0")
    with pytest.raises(Exception, match="could not be published"):
        await emitter.emit_created(stored_doc("A1"))
    await emitter.close()


async def test_read_and_archive_over_http_reach_clients_on_every_node(
    live_server: LiveServer,
    second_node: LiveServer,
    settings: Settings,
    ingest_key: str,
    listeners: list[Listener],
) -> None:
    account = unique("acct")
    token = portal_token(settings, account)
    here = await connected(listeners, live_server.url, token)
    there = await connected(listeners, second_node.url, token)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        doc_id = await ingest(http, ingest_key, account)
        url = f"/v1/mailbox/documents/{doc_id}"

        read = await http.post(f"{url}/read", headers=bearer(token))
        assert read.status_code == 200
        for listener in (here, there):
            event = await listener.next("document.updated")
            assert event["id"] == doc_id
            assert event["read_at"] == read.json()["read_at"]
            assert event["archived"] is False

        # Already read: nothing changes, nothing is announced.
        assert (await http.post(f"{url}/read", headers=bearer(token))).status_code == 200
        assert await there.nothing("document.updated")

        assert (await http.post(f"{url}/archive", headers=bearer(token))).status_code == 200
        event = await there.next("document.updated")
        assert event["archived"] is True
        assert event["archived_at"] is not None
        assert (await http.delete(f"{url}/read", headers=bearer(token))).status_code == 200
        assert (await there.next("document.updated"))["read_at"] is None


async def test_token_expiry_ends_the_connection(
    live_server: LiveServer, settings: Settings, listeners: list[Listener]
) -> None:
    client = await connected(listeners, live_server.url, portal_token(settings, "A1", ttl_s=2))
    assert client.client.connected
    await asyncio.wait_for(client.disconnected.wait(), 10)
    assert not client.client.connected


@pytest.fixture(scope="module")
def realtime_worker(test_env: dict[str, str], services: Any) -> Iterator[subprocess.Popen[bytes]]:
    """The notification worker, consuming only the realtime queue."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailbox_service",
            "worker",
            "--queue",
            "realtime",
            "--no-sweep",
            "--threads",
            "2",
        ],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    stop_process(process)


async def test_ingest_to_event_end_to_end(
    live_server: LiveServer,
    realtime_worker: subprocess.Popen[bytes],
    settings: Settings,
    ingest_key: str,
    listeners: list[Listener],
) -> None:
    """POST /v1/documents → worker → Redis → Socket.IO → the connected client."""
    account = unique("acct")
    client = await connected(listeners, live_server.url, portal_token(settings, account))
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        response = await post_document(http, ingest_key, invoice_metadata(account, title="Hello"))
    assert response.status_code == 201
    event = await client.next("document.created", wait_s=30)
    assert event["id"] == response.json()["id"]
    assert event["title"] == "Hello"
    assert event["account_id"] == account
    assert set(event) == {"id", "type", "account_id", "title", "summary", "issued_at"}
