"""What a rate limit costs per request: the GCRA script against the stack's Redis.

    MAILBOX_BENCH_PROFILE=test2 uv run python bench/rate_limit.py [--count 5000]
        [--concurrency 32]

Brings the profile's stack up (reusing it if running) and prints, all in one run:
  * one `RateLimiter.take()` (one EVALSHA of the GCRA script) awaited one after another:
    p50/p99 in microseconds, beside a plain GET and an EVALSHA of a script that only returns,
    on the same kind of connection: the floor any one-round-trip limiter pays;
  * takes per second with `--concurrency` tasks sharing the limiter's connection pool;
  * the whole HTTP app in-process (ASGI, no sockets), one tiny anonymous route, with the
    limits on and with every budget 0 (the limiter never asks Redis): the difference is what
    a request pays for its limit, guard and address parsing included.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
from litestar import get

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.log import configure_logging
from mailbox_service.ratelimit import RateLimiter, limiter_redis
from mailbox_service.settings import RateSettings, Settings, load_settings
from mailbox_service.wiring.app import create_litestar
from mailbox_service.wiring.services import Services

BIG_BUDGET = 1_000_000_000  # never refuses: every call does the full script


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"  {name:<44} p50 {statistics.median(ordered):7.0f} us   p99 {p99:7.0f} us   "
        f"mean {statistics.fmean(ordered):7.0f} us"
    )


async def redis_costs(url: str, count: int, concurrency: int) -> None:
    redis = limiter_redis(url)
    limiter = RateLimiter(redis)
    noop = redis.register_script("return 0")
    bucket = f"bench:{uuid.uuid4().hex}"
    await limiter.take(bucket, BIG_BUDGET)  # loads the script, opens the connection
    await noop()
    print(f"Redis round trips, {count} sequential calls each:")
    print(summary("GET of a missing key", await timed(lambda: redis.get("bench:none"), count)))
    print(summary("EVALSHA of `return 0`", await timed(lambda: noop(), count)))
    started_cpu = time.process_time()
    takes = await timed(lambda: limiter.take(bucket, BIG_BUDGET), count)
    take_cpu = (time.process_time() - started_cpu) * 1e6 / count
    print(summary("RateLimiter.take (GCRA script)", takes) + f"   CPU {take_cpu:5.0f} us")

    async def worker(n: int) -> None:
        for _ in range(n):
            await limiter.take(f"bench:{uuid.uuid4().hex[:6]}", BIG_BUDGET)

    started = time.perf_counter()
    await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    done = (count // concurrency) * concurrency
    print(
        f"  {concurrency} concurrent tasks: {done / elapsed:,.0f} takes/s "
        f"({elapsed * 1e6 / done:.0f} us of wall time per take)"
    )
    await limiter.close()


@get("/bench/ping", operation_id="benchPing")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


async def http_costs(settings: Settings, count: int) -> None:
    print(
        f"Whole app in-process, GET /bench/ping (anonymous), {count} requests each, "
        "limits on and off alternating (a busy machine then slows both alike):"
    )
    clients: dict[str, httpx.AsyncClient] = {}
    built: list[Services] = []
    for label, budget in (("limits off (budgets 0)", 0), ("limits on", BIG_BUDGET)):
        configured = msgspec.structs.replace(
            settings, rate=RateSettings(anonymous_per_minute=budget)
        )
        services = Services.build(configured)
        built.append(services)
        app = create_litestar(configured, services=services, extra_handlers=[ping])
        logging.getLogger("httpx").setLevel(logging.WARNING)  # create_litestar set up logging
        app.state.services = services  # the lifespan would; ASGITransport does not run it
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 4000))
        clients[label] = httpx.AsyncClient(transport=transport, base_url="http://bench")
    samples: dict[str, list[float]] = {label: [] for label in clients}
    cpu: dict[str, float] = dict.fromkeys(clients, 0.0)
    for i in range(count + 200):
        for label, client in clients.items():
            wall, started_cpu = time.perf_counter(), time.process_time()
            assert (await client.get("/bench/ping")).status_code == 200
            if i >= 200:  # the first 200 warm up
                samples[label].append((time.perf_counter() - wall) * 1e6)
                cpu[label] += time.process_time() - started_cpu
    for label in clients:
        print(summary(label, samples[label]) + f"   CPU {cpu[label] * 1e6 / count:5.0f} us")
        await clients[label].aclose()
    for services in built:
        await services.close()
    on, off = "limits on", "limits off (budgets 0)"
    extra = statistics.median(samples[on]) - statistics.median(samples[off])
    extra_cpu = (cpu[on] - cpu[off]) * 1e6 / count
    print(f"  a request pays {extra:.0f} us wall (median) and {extra_cpu:.0f} us CPU for its limit")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    configure_logging("console")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    settings = load_settings()
    print(f"rate-limit benchmark: {os.cpu_count()} cores, stack {stack.config.profile}")
    await redis_costs(settings.redis.url, args.count, args.concurrency)
    await http_costs(settings, args.count)


if __name__ == "__main__":
    asyncio.run(main())
