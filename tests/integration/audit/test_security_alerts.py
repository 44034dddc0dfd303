"""Intrusion alerts on the real Redis: one `security.alert` per window at the threshold, none
below it, counted across nodes; raised by 401s and by a portal user's 404s over HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from app_fixtures import unique
from audit_fixtures import audit_entries
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.asgi import create_app
from mailbox_service.audit import IntrusionAlerts
from mailbox_service.audit.alerts import KEY_PREFIX
from mailbox_service.log import configure_logging
from mailbox_service.settings import AlertSettings, Settings
from mailbox_service.wiring.services import Services
from notify_fixtures import eventually

THRESHOLD = 4
PORTAL_PER_MINUTE = 30


def alerts_counted(kind: str) -> float:
    return REGISTRY.get_sample_value("mailbox_security_alerts_total", {"kind": kind}) or 0.0


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(settings.redis.url)
    yield connection
    await connection.aclose()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(record.msg)


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    """structlog events as the service logs them (through stdlib logging, as in production)."""
    configure_logging("json")
    records = Records()
    logging.getLogger().addHandler(records)
    yield records.events
    logging.getLogger().removeHandler(records)


async def test_one_alert_at_the_threshold_and_none_below_it(
    services: Services, log_events: list[dict[str, Any]]
) -> None:
    alerts = IntrusionAlerts(services.redis, AlertSettings(window_s=120, auth_failed=THRESHOLD))
    key = unique("203.0.113")
    raised = [await alerts.observe("auth_failed", key) for _ in range(THRESHOLD - 1)]
    assert raised == [False] * (THRESHOLD - 1)
    before = alerts_counted("auth_failed")
    raised = [await alerts.observe("auth_failed", key) for _ in range(3 * THRESHOLD)]
    assert raised == [True] + [False] * (3 * THRESHOLD - 1)
    assert alerts_counted("auth_failed") == before + 1
    alerts_logged = [event for event in log_events if event.get("event") == "security.alert"]
    assert len(alerts_logged) == 1, alerts_logged
    assert {k: alerts_logged[0][k] for k in ("kind", "key", "count", "window_s")} == {
        "kind": "auth_failed",
        "key": key,
        "count": THRESHOLD,
        "window_s": 120,
    }
    # Another key has its own count.
    assert not await alerts.observe("auth_failed", unique("198.51.100"))


async def test_nodes_add_up_to_one_alert(settings: Settings) -> None:
    """Two API processes, each with its own Redis connection, share one count."""
    nodes = [
        IntrusionAlerts(
            aioredis.Redis.from_url(settings.redis.url),
            AlertSettings(window_s=120, not_found=THRESHOLD),
        )
        for _ in range(2)
    ]
    subject = unique("user")
    half = THRESHOLD // 2
    below = await asyncio.gather(
        *(node.observe("not_found", subject) for node in nodes for _ in range(half - 1))
    )
    assert not any(below)
    rest = await asyncio.gather(
        *(node.observe("not_found", subject) for node in nodes for _ in range(half + 3))
    )
    assert sum(rest) == 1
    for node in nodes:
        await node._redis.aclose()


@pytest.fixture
async def alerting_client(
    settings: Settings, services: Services, redis: aioredis.Redis
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app with low thresholds; the test client's address starts with a clean count."""
    low = msgspec.structs.replace(
        settings,
        alert=AlertSettings(
            window_s=120, auth_failed=THRESHOLD, not_found=THRESHOLD, rate_limited=THRESHOLD
        ),
        rate=msgspec.structs.replace(settings.rate, portal_per_minute=PORTAL_PER_MINUTE),
    )
    async for name in redis.scan_iter(f"{KEY_PREFIX}:auth_failed:*"):
        await redis.delete(name)
    async with AsyncTestClient(app=create_app(low), timeout=30) as client:
        yield client


async def test_repeated_401s_from_one_address_raise_one_alert(
    alerting_client: AsyncTestClient[Any],
) -> None:
    before = alerts_counted("auth_failed")
    for _ in range(THRESHOLD - 1):
        response = await alerting_client.get(
            "/v1/mailbox/unread-count", headers=bearer(unique("guess"))
        )
        assert response.status_code == 401
    await asyncio.sleep(0.3)
    assert alerts_counted("auth_failed") == before
    for _ in range(THRESHOLD):
        response = await alerting_client.get("/v1/admin/audit", headers=bearer(unique("guess")))
        assert response.status_code == 401
    await eventually(
        lambda: asyncio.sleep(0, alerts_counted("auth_failed")),
        lambda n: n == before + 1,
        within=5,
        what="one auth_failed alert",
    )
    await asyncio.sleep(0.3)
    assert alerts_counted("auth_failed") == before + 1


async def test_a_portal_user_probing_other_accounts_raises_one_alert(
    alerting_client: AsyncTestClient[Any], settings: Settings, ingest_key: str
) -> None:
    victim = await ingest(alerting_client, ingest_key, unique("acct"))
    prober = portal_token(settings, unique("acct"), sub=unique("user"))
    honest = portal_token(settings, unique("acct"), sub=unique("user"))
    before = alerts_counted("not_found")
    for _ in range(THRESHOLD - 1):
        response = await alerting_client.get(
            f"/v1/mailbox/documents/{victim}", headers=bearer(honest)
        )
        assert response.status_code == 404
    await asyncio.sleep(0.3)
    assert alerts_counted("not_found") == before
    paths = [
        f"/v1/mailbox/documents/{victim}",
        f"/v1/mailbox/documents/{victim}/content",
        f"/v1/mailbox/accounts/{unique('acct')}/preferences",
    ]
    for i in range(THRESHOLD + 2):
        response = await alerting_client.get(paths[i % len(paths)], headers=bearer(prober))
        assert response.status_code == 404
    await eventually(
        lambda: asyncio.sleep(0, alerts_counted("not_found")),
        lambda n: n == before + 1,
        within=5,
        what="one not_found alert",
    )
    await asyncio.sleep(0.3)
    assert alerts_counted("not_found") == before + 1


async def test_a_rate_limited_user_is_audited_and_raises_one_alert(
    alerting_client: AsyncTestClient[Any], settings: Settings, services: Services
) -> None:
    sub = unique("user")
    token = portal_token(settings, unique("acct"), sub=sub)
    before = alerts_counted("rate_limited")
    statuses = []
    for _ in range(PORTAL_PER_MINUTE + 2 * THRESHOLD):
        response = await alerting_client.get("/v1/mailbox/unread-count", headers=bearer(token))
        statuses.append(response.status_code)
    limited = statuses.count(429)
    assert limited >= THRESHOLD, statuses
    assert set(statuses) == {200, 429}
    entries = await audit_entries(services, {"actor_id": sub, "action": "rate.limited"}, limited)
    assert len(entries) == limited
    assert entries[0]["actor"] == {"kind": "portal", "sub": sub}
    assert entries[0]["details"]["path"] == "/v1/mailbox/unread-count"
    await eventually(
        lambda: asyncio.sleep(0, alerts_counted("rate_limited")),
        lambda n: n == before + 1,
        within=5,
        what="one rate_limited alert",
    )
