"""Socket.IO session caps and the auth timeout on real `mailbox-service serve` processes.

Two nodes share the stack's Redis with small caps (3 unauthenticated sessions per address,
2 sessions per user, 3 s to authenticate) and trust 127.0.0.1 as a proxy, so each test
opens its sessions from its own client address (X-Forwarded-For).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import socketio

from app_fixtures import LiveServer, start_live_server, stop_process, unique
from mailbox_fixtures import portal_token
from mailbox_service.ratelimit.sessions import user_key
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services
from notify_fixtures import eventually

PER_ADDRESS = 3
PER_USER = 2
AUTH_TIMEOUT_S = 3.0  # long enough for a loaded machine to open the sessions of one test
SOCKET_ENV = {
    "MAILBOX_RATE_SOCKETS_PER_ADDRESS": str(PER_ADDRESS),
    "MAILBOX_RATE_SOCKETS_PER_USER": str(PER_USER),
    "MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S": str(AUTH_TIMEOUT_S),
    "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": "4",
    "MAILBOX_RATE_TRUSTED_PROXIES": "127.0.0.1",
}
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def an_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture(scope="module")
def nodes(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    first = start_live_server(tmp_path_factory.mktemp("sockets-a"), SOCKET_ENV)
    try:
        second = start_live_server(tmp_path_factory.mktemp("sockets-b"), SOCKET_ENV)
    except Exception:
        stop_process(first.process)
        raise
    yield first, second
    stop_process(first.process)
    stop_process(second.process)


async def handshake(url: str, address: str) -> httpx.Response:
    """An Engine.IO handshake without credentials, as a flood would send it."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.get(HANDSHAKE, headers={"X-Forwarded-For": address})


def session_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.text.startswith("0{"), response.text  # Engine.IO OPEN packet
    return str(json.loads(response.text[1:])["sid"])


class PortalClient:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.refusals: list[Any] = []
        self.client.on("connect_error", self.refusals.append)

    async def connect(self, url: str, token: str, address: str) -> None:
        await self.client.connect(
            url,
            auth={"token": token},
            headers={"X-Forwarded-For": address},
            transports=["websocket"],
            wait_timeout=5,
        )


@pytest.fixture
async def clients() -> AsyncIterator[list[PortalClient]]:
    made: list[PortalClient] = []
    yield made
    for client in made:
        if client.client.connected:
            await client.client.disconnect()


async def portal_client(made: list[PortalClient]) -> PortalClient:
    client = PortalClient()
    made.append(client)
    return client


async def test_unauthenticated_sessions_beyond_the_cap_are_refused_on_every_node(
    nodes: tuple[LiveServer, LiveServer],
) -> None:
    flood, bystander = an_address(), an_address()
    # The cap holds across nodes: sessions on both count toward one address.
    for i in range(PER_ADDRESS):
        session_id(await handshake(nodes[i % 2].url, flood))
    for node in nodes:
        refused = await handshake(node.url, flood)
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "3"  # the auth timeout
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert f"(limit {PER_ADDRESS})" in error["message"]
    session_id(await handshake(nodes[0].url, bystander))
    # The idle sessions are closed after the auth timeout, and their places are free again.
    await asyncio.sleep(AUTH_TIMEOUT_S + 1.0)
    session_id(await handshake(nodes[1].url, flood))


async def test_an_idle_unauthenticated_session_is_closed_after_the_timeout(
    nodes: tuple[LiveServer, LiveServer],
) -> None:
    url = nodes[0].url
    sid = session_id(await handshake(url, an_address()))
    await asyncio.sleep(AUTH_TIMEOUT_S + 1.0)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        poll = await client.get(f"{HANDSHAKE}&sid={sid}")
    # Engine.IO no longer knows the session.
    assert poll.status_code == 400, poll.text


async def test_an_authenticated_session_outlives_the_auth_timeout(
    nodes: tuple[LiveServer, LiveServer], settings: Settings, clients: list[PortalClient]
) -> None:
    client = await portal_client(clients)
    token = portal_token(settings, unique("acct"), sub=unique("user"))
    await client.connect(nodes[0].url, token, an_address())
    await asyncio.sleep(AUTH_TIMEOUT_S + 1.0)
    assert client.client.connected


async def test_sessions_per_user_are_capped_across_nodes(
    nodes: tuple[LiveServer, LiveServer],
    settings: Settings,
    services: Services,
    clients: list[PortalClient],
) -> None:
    sub = unique("user")
    token = portal_token(settings, unique("acct"), sub=sub)
    first, second = await portal_client(clients), await portal_client(clients)
    await first.connect(nodes[0].url, token, an_address())
    await second.connect(nodes[1].url, token, an_address())
    third = await portal_client(clients)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect(nodes[0].url, token, an_address())
    assert "too many Socket.IO sessions for this user" in str(third.refusals[0])
    assert f"(limit {PER_USER})" in str(third.refusals[0])
    # Another user is not affected...
    other = await portal_client(clients)
    other_token = portal_token(settings, unique("acct"), sub=unique("user"))
    await other.connect(nodes[0].url, other_token, an_address())
    # ...and a closed session frees its place. The client's disconnect() returns once it has
    # said goodbye; the node gives the place back when it handles that, a moment later.
    await first.client.disconnect()

    async def places_taken() -> int:
        return int(await services.redis.zcard(user_key(sub)))

    await eventually(
        places_taken, lambda n: n < PER_USER, within=10, what="the closed session's place freed"
    )
    fourth = await portal_client(clients)
    await fourth.connect(nodes[1].url, token, an_address())
    assert fourth.client.connected


async def test_refused_tokens_spend_the_address_budget(
    nodes: tuple[LiveServer, LiveServer], settings: Settings, clients: list[PortalClient]
) -> None:
    address = an_address()
    refusals = []
    for _ in range(5):
        client = await portal_client(clients)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(nodes[0].url, "not-a-token", address)
        refusals.append(str(client.refusals[0]))
    assert all("unauthorized" in r for r in refusals[:4])
    assert "rate limited" in refusals[4]
    assert "for this client address" in refusals[4]
