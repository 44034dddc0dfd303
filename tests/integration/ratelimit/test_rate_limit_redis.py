"""The limiter's Redis scripts on the stack's real Redis: GCRA budgets and session leases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from app_fixtures import unique
from mailbox_service.ratelimit import RateLimiter, SocketSessions, limiter_redis
from mailbox_service.ratelimit.gcra import KEY_PREFIX
from mailbox_service.ratelimit.sessions import user_key
from mailbox_service.settings import RateSettings, Settings


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = limiter_redis(settings.redis.url)
    yield client
    await client.aclose()


async def test_a_burst_of_the_budget_passes_then_retry_after_is_truthful(
    redis: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis)
    bucket = unique("bucket")
    per_minute = 60  # one request a second once the burst is spent
    waits = [await limiter.take(bucket, per_minute) for _ in range(per_minute)]
    assert waits == [0] * per_minute
    wait = await limiter.take(bucket, per_minute)
    assert wait == 1  # under a second, rounded up to whole seconds
    await asyncio.sleep(wait)
    assert await limiter.take(bucket, per_minute) == 0
    # The second refilled one request, not a whole new burst.
    assert await limiter.take(bucket, per_minute) == 1
    # The bucket's key expires once the bucket would be full again: idle clients cost nothing.
    ttl_ms = await redis.pttl(f"{KEY_PREFIX}{bucket}")
    assert 0 < ttl_ms <= 60_000


async def test_concurrent_requests_cannot_overdraw_a_budget(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    bucket = unique("bucket")
    waits = await asyncio.gather(*(limiter.take(bucket, 20) for _ in range(60)))
    assert sum(1 for w in waits if w == 0) == 20
    assert {w for w in waits if w} == {3}  # 60/20 s until the next request


async def test_zero_is_unlimited_without_a_key(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    bucket = unique("bucket")
    assert [await limiter.take(bucket, 0) for _ in range(50)] == [0] * 50
    assert not await redis.exists(f"{KEY_PREFIX}{bucket}")


async def _never_closed(eio_sid: str) -> None:
    raise AssertionError(f"{eio_sid} must not be closed")


async def test_a_dead_nodes_sessions_lapse_and_a_live_nodes_are_renewed(
    settings: Settings, redis: aioredis.Redis
) -> None:
    rate = RateSettings(sockets_per_user=1)
    sub = unique("user")
    alive = SocketSessions(rate, limiter_redis(settings.redis.url), _never_closed, user_lease_s=1.0)
    dying = SocketSessions(rate, limiter_redis(settings.redis.url), _never_closed, user_lease_s=1.0)
    other = SocketSessions(rate, limiter_redis(settings.redis.url), _never_closed)
    try:
        # A node takes the user's only place, keeps renewing it: the place stays taken.
        assert await alive.opened("live-1", "192.0.2.1") is None
        assert await alive.authenticated("live-1", sub) is None
        await asyncio.sleep(2.0)  # two leases, renewed every third of one
        assert await other.opened("other-1", "192.0.2.2") is None
        assert await other.authenticated("other-1", sub) is not None
        await alive.closed("live-1")
        # A node that dies holding the place (it stops renewing and never says goodbye)...
        assert await dying.opened("dying-1", "192.0.2.1") is None
        assert await dying.authenticated("dying-1", sub) is None
        await dying.stop()  # the renewer stops; the member stays in Redis
        assert await other.authenticated("other-1", sub) is not None
        # ...gives it back within one lease.
        await asyncio.sleep(1.2)
        assert await other.authenticated("other-1", sub) is None
        assert await redis.zrange(user_key(sub), 0, -1) == [b"other-1"]
    finally:
        await alive.stop()
        await other.closed("other-1")
        await other.stop()
