"""HTTP rate limits on real `mailbox-service serve` processes sharing the stack's Redis.

Two nodes run with budgets of 5 per minute and trust 127.0.0.1 as a proxy, so each test
speaks from its own client address (X-Forwarded-For) and with its own key or token subject:
the budgets of one test never touch another's.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app_fixtures import LiveServer, free_port, start_live_server, stop_process, unique
from mailbox_fixtures import bearer, portal_token
from mailbox_service.ratelimit import Budgets, RateLimiter, limiter_redis
from mailbox_service.ratelimit.gcra import KEY_PREFIX
from mailbox_service.settings import RateSettings, Settings
from mailbox_service.wiring.app import create_litestar
from mailbox_service.wiring.services import Services

BUDGET = 5
RATE_ENV = {
    "MAILBOX_RATE_INGEST_PER_MINUTE": str(BUDGET),
    "MAILBOX_RATE_PORTAL_PER_MINUTE": str(BUDGET),
    "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": str(BUDGET),
    "MAILBOX_RATE_TRUSTED_PROXIES": "127.0.0.1",
}
UNREAD = "/v1/mailbox/unread-count"
TYPES = "/v1/document-types"
SCHEMA = "/schema/openapi.json"


def an_address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def from_(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"X-Forwarded-For": address, **(headers or {})}


@pytest.fixture(scope="module")
def nodes(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    first = start_live_server(tmp_path_factory.mktemp("rate-a"), RATE_ENV)
    try:
        second = start_live_server(tmp_path_factory.mktemp("rate-b"), RATE_ENV)
    except Exception:
        stop_process(first.process)
        raise
    yield first, second
    stop_process(first.process)
    stop_process(second.process)


@pytest.fixture
async def http(nodes: tuple[LiveServer, LiveServer]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as client:
        yield client


def assert_limited(response: httpx.Response, whose: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    # 5 per minute refill one every 12 s: the next request may pass within 12 s.
    assert 1 <= retry_after <= 12
    error = response.json()["error"]
    assert error["status"] == 429
    assert error["code"] == "rate_limited"
    assert error["message"].startswith(
        f"rate limit of {BUDGET} requests per minute for {whose} exceeded"
    )
    assert f"retry after {retry_after} s" in error["message"]


async def test_a_portal_user_gets_429_with_retry_after_once_the_budget_is_spent(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    token = portal_token(settings, unique("acct"), sub=unique("user"))
    address = an_address()
    for _ in range(BUDGET):
        response = await http.get(UNREAD, headers=from_(address, bearer(token)))
        assert response.status_code == 200, response.text
    response = await http.get(UNREAD, headers=from_(address, bearer(token)))
    assert_limited(response, "this portal user")


async def test_one_exhausted_user_does_not_block_another_from_the_same_address(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    address = an_address()
    sub = unique("user")
    spent = portal_token(settings, unique("acct"), sub=sub)
    for _ in range(BUDGET + 1):
        last = await http.get(UNREAD, headers=from_(address, bearer(spent)))
    assert last.status_code == 429
    fresh = portal_token(settings, unique("acct"), sub=unique("user"))
    assert (await http.get(UNREAD, headers=from_(address, bearer(fresh)))).status_code == 200
    # A new token for the spent subject does not buy a new budget: the subject is the key.
    again = portal_token(settings, unique("acct"), sub=sub)
    assert (await http.get(UNREAD, headers=from_(address, bearer(again)))).status_code == 429


async def test_api_keys_have_budgets_of_their_own_on_ingestion_routes(
    http: httpx.AsyncClient, services: Services
) -> None:
    _, spent = await services.api_keys.create(unique("src"), ["ingest"])
    _, other = await services.api_keys.create(unique("src"), ["ingest"])
    address = an_address()
    for _ in range(BUDGET):
        assert (await http.get(TYPES, headers=from_(address, bearer(spent)))).status_code == 200
    assert_limited(await http.get(TYPES, headers=from_(address, bearer(spent))), "this API key")
    # The upload route spends the same budget: refused before the body is read.
    upload = await http.post(
        "/v1/documents",
        headers=from_(address, bearer(spent)),
        files={"metadata": (None, b"{}", "application/json")},
    )
    assert_limited(upload, "this API key")
    assert (await http.get(TYPES, headers=from_(address, bearer(other)))).status_code == 200


async def test_admin_routes_spend_the_keys_budget(
    http: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.api_keys.create(unique("ops"), ["admin"])
    address = an_address()
    for _ in range(BUDGET):
        response = await http.get(
            "/v1/admin/notifications/stats", headers=from_(address, bearer(key))
        )
        assert response.status_code == 200, response.text
    response = await http.get("/v1/admin/notifications/stats", headers=from_(address, bearer(key)))
    assert_limited(response, "this API key")


async def test_the_budget_is_shared_by_every_node(
    nodes: tuple[LiveServer, LiveServer], settings: Settings
) -> None:
    token = portal_token(settings, unique("acct"), sub=unique("user"))
    address = an_address()
    async with (
        httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as first,
        httpx.AsyncClient(base_url=nodes[1].url, timeout=10) as second,
    ):
        for i in range(BUDGET):
            node = first if i % 2 else second
            response = await node.get(UNREAD, headers=from_(address, bearer(token)))
            assert response.status_code == 200, response.text
        for node in (first, second):
            response = await node.get(UNREAD, headers=from_(address, bearer(token)))
            assert_limited(response, "this portal user")


async def test_guessed_keys_and_tokens_are_capped_per_address(
    http: httpx.AsyncClient, services: Services, settings: Settings
) -> None:
    guesser, bystander = an_address(), an_address()
    guesses = [
        bearer("mbx_deadbeef_not-a-key"),
        bearer("garbage.token.here"),
        {},  # no credentials at all
    ]
    statuses = []
    for i in range(BUDGET + 2):
        path = TYPES if i % 2 else UNREAD
        response = await http.get(path, headers=from_(guesser, guesses[i % len(guesses)]))
        statuses.append(response.status_code)
    assert statuses == [401] * BUDGET + [429, 429]
    assert_limited(
        await http.get(UNREAD, headers=from_(guesser, bearer("x"))), "this client address"
    )
    # The flood's address waits even with a valid key (on the node that refused it)...
    _, key = await services.api_keys.create(unique("src"), ["ingest"])
    assert (await http.get(TYPES, headers=from_(guesser, bearer(key)))).status_code == 429
    # ...while another address with bad credentials still gets a plain 401.
    assert (await http.get(UNREAD, headers=from_(bystander, bearer("x")))).status_code == 401
    assert (await http.get(TYPES, headers=from_(bystander, bearer(key)))).status_code == 200


async def test_routes_without_credentials_spend_the_address_budget(
    http: httpx.AsyncClient,
) -> None:
    address = an_address()
    for _ in range(BUDGET):
        assert (await http.get(SCHEMA, headers=from_(address))).status_code == 200
    assert_limited(await http.get(SCHEMA, headers=from_(address)), "this client address")
    assert (await http.get(SCHEMA, headers=from_(an_address()))).status_code == 200


async def test_health_probes_are_never_limited(http: httpx.AsyncClient) -> None:
    address = an_address()
    for _ in range(BUDGET + 1):
        await http.get(SCHEMA, headers=from_(address))
    assert (await http.get(SCHEMA, headers=from_(address))).status_code == 429
    for _ in range(3 * BUDGET):
        assert (await http.get("/health/live", headers=from_(address))).status_code == 200
    assert (await http.get("/health/ready", headers=from_(address))).status_code == 200


# --------------------------------- in-process apps -------------------------------------------


def with_rate(settings: Settings, **rate: Any) -> Settings:
    return msgspec.structs.replace(settings, rate=RateSettings(**rate))


async def test_an_untrusted_peer_cannot_buy_budget_with_forwarded_for(
    settings: Settings, services: Services
) -> None:
    # The in-process client's peer is "testclient": trusted by nobody.
    await services.redis.delete(f"{KEY_PREFIX}addr:testclient")
    app = create_litestar(with_rate(settings, anonymous_per_minute=3))
    async with AsyncTestClient(app=app) as client:
        statuses = [
            (await client.get(SCHEMA, headers=from_(an_address()))).status_code for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_zero_means_unlimited_and_costs_no_redis_round_trip(
    settings: Settings, services: Services
) -> None:
    sub = unique("user")
    unlimited = with_rate(settings, portal_per_minute=0, anonymous_per_minute=0)
    token = portal_token(settings, unique("acct"), sub=sub)
    async with AsyncTestClient(app=create_litestar(unlimited)) as client:
        for _ in range(30):
            assert (await client.get(UNREAD, headers=bearer(token))).status_code == 200
            assert (await client.get(UNREAD, headers=bearer("bad"))).status_code == 401
    assert not await services.redis.exists(f"{KEY_PREFIX}sub:{sub}")
    # The same requests with a budget do leave the subject's bucket in Redis.
    async with AsyncTestClient(app=create_litestar(with_rate(settings))) as client:
        assert (await client.get(UNREAD, headers=bearer(token))).status_code == 200
    assert await services.redis.exists(f"{KEY_PREFIX}sub:{sub}")


async def test_fails_open_with_a_warning_when_redis_is_unreachable(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    limited = with_rate(settings, portal_per_minute=1, anonymous_per_minute=1)

    async def limiter_on_a_dead_redis(app: Litestar) -> None:
        # A port nobody listens on: every call to the limiter's Redis is refused.
        dead = RateLimiter(limiter_redis(f"redis://127.0.0.1:{free_port()}/0"))
        app.state.services.rate_limits = Budgets(limited.rate, dead)

    token = portal_token(settings, unique("acct"), sub=unique("user"))
    app = create_litestar(limited, on_startup=[limiter_on_a_dead_redis])
    # Read what the service wrote (create_litestar routes all logging to stderr as JSON):
    # structlog's capture_logs cannot see loggers cached by earlier tests, and the logging
    # set-up replaces caplog's handler.
    async with AsyncTestClient(app=app) as client:
        statuses = [
            (await client.get(UNREAD, headers=bearer(token))).status_code for _ in range(5)
        ] + [(await client.get(SCHEMA)).status_code for _ in range(3)]
    assert statuses == [200] * 8
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    warnings = [e for e in lines if e.get("event") == "rate_limit.redis_unavailable"]
    assert warnings
    assert warnings[0]["level"] == "warning"
    # One warning per pause, not one per request.
    assert len(warnings) < len(statuses)
