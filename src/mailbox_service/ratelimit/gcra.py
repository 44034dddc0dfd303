"""One Redis round trip per request: the generic cell rate algorithm (GCRA) in a Lua script.

A budget of N per minute is a bucket of N requests that refills continuously at N per minute:
a client may send N at once, then one every 60/N seconds. Redis keeps one number per bucket,
the "theoretical arrival time" (TAT) of the next request, and expires it once the bucket is
full again, so idle clients cost nothing. The script reads Redis's own clock, so API nodes
with skewed clocks still share one budget.

If Redis does not answer, the limiter lets the request through (fails open) and logs a
warning: the limits protect the service from floods, and refusing every customer because the
limiter's store is down would turn a Redis outage into a full outage. While it is down the
limiter stops asking for a second, so a dead Redis does not add a timeout to every request.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mailbox_service.log import get_logger

log = get_logger(__name__)

KEY_PREFIX = "mailbox:rate:"
REDIS_TIMEOUT_S = 0.5
"""Connect and read timeout of the limiter's connection: a request never waits longer."""
FAIL_OPEN_PAUSE_S = 1.0
"""After a Redis error, requests pass without asking Redis for this long."""

# KEYS[1]: the bucket. ARGV[1]: emission interval T in microseconds (60 s / N).
# ARGV[2]: capacity N*T in microseconds. Returns 0 when the request may pass, else the wait
# in microseconds until it would.
GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local next_tat = tat + interval
local excess = next_tat - now - capacity
if excess > 0 then
  return math.ceil(excess)
end
local ttl_ms = math.max(1, math.ceil((next_tat - now) / 1000))
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl_ms)
return 0
"""


def limiter_redis(url: str) -> aioredis.Redis:
    """A Redis client for the limiters: short timeouts and no retries (they fail open)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


class RedisOutage:
    """Remembers a Redis failure for a moment and logs it once per pause, not per request."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._until = 0.0

    @property
    def ongoing(self) -> bool:
        return time.monotonic() < self._until

    def failed(self, exc: Exception) -> None:
        self._until = time.monotonic() + FAIL_OPEN_PAUSE_S
        log.warning(
            "rate_limit.redis_unavailable",
            limiter=self._what,
            error=str(exc) or type(exc).__name__,
            effect="requests pass unlimited until Redis answers again",
        )


def _same_server(redis: aioredis.Redis) -> aioredis.Redis:
    """A new client with `redis`'s connection settings and a pool of its own."""
    pool = redis.connection_pool
    return aioredis.Redis(
        connection_pool=type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
    )


class RateLimiter:
    """Takes one request out of a named bucket of N per minute, shared through Redis."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        # A redis.asyncio connection belongs to the event loop that opened it. A served process
        # has one loop, but an app run by a test client (an anyio portal) gets its own: using
        # the first loop's connection there fails with "attached to a different loop", which is
        # no Redis outage and would be a 500. So each loop gets its own client.
        self._per_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aioredis.Redis, Any]
        ] = weakref.WeakKeyDictionary()
        self._outage = RedisOutage("http")

    def _script(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._per_loop.get(loop)
        if found is None:
            redis = self._redis if not self._per_loop else _same_server(self._redis)
            found = (redis, redis.register_script(GCRA_SCRIPT))
            self._per_loop[loop] = found
        return found[1]

    async def take(self, bucket: str, per_minute: int) -> int:
        """0 when the request may pass, else the whole seconds until one would (at least 1)."""
        if per_minute <= 0 or self._outage.ongoing:
            return 0
        interval_us = 60_000_000 / per_minute
        try:
            wait_us = await self._script()(
                keys=[KEY_PREFIX + bucket], args=[interval_us, interval_us * per_minute]
            )
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return 0
        return max(1, math.ceil(int(wait_us) / 1_000_000)) if int(wait_us) > 0 else 0

    async def close(self) -> None:
        """Close this loop's client; the connections of loops already closed went with them."""
        if not self._per_loop:
            await self._redis.aclose()
        current = asyncio.get_running_loop()
        for loop, (redis, _) in list(self._per_loop.items()):
            if loop is current:
                await redis.aclose()
        self._per_loop.clear()
