"""Liveness and readiness: readiness names each dependency and which one failed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from litestar import Controller, Response, get

from mailbox_service.server.deps import ServicesDep

Check = Callable[[], Awaitable[Any]]


async def _checked_twice(check: Check) -> None:
    # A pooled connection to a server that restarted fails once and is then replaced; that
    # is not a dependency being down, so one immediate second try decides.
    try:
        await check()
    except Exception:
        await check()


async def _timed(check: Check, limit_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with anyio.fail_after(limit_s):
            await _checked_twice(check)
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        return {"status": "down", "error": detail[:300]}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", operation_id="healthLive", exclude_from_auth=True)
    async def live(self) -> dict[str, str]:
        """The process is up and serving requests."""
        return {"status": "ok"}

    @get("/ready", operation_id="healthReady")
    async def ready(self, services: ServicesDep) -> Response[dict[str, Any]]:
        """Every dependency answers: 200, else 503 naming the ones that failed."""
        checks: dict[str, Check] = {
            "mongodb": lambda: services.collections.db.command("ping"),
            "minio": services.blobs.check,
            "redis": services.redis.ping,
        }
        results: dict[str, dict[str, Any]] = {}

        async def run(name: str, check: Check) -> None:
            results[name] = await _timed(check, limit_s=3.0)

        async with anyio.create_task_group() as tg:
            for name, check in checks.items():
                tg.start_soon(run, name, check)
        failed = sorted(name for name, result in results.items() if result["status"] != "up")
        body: dict[str, Any] = {
            "status": "ok" if not failed else "unavailable",
            "checks": dict(sorted(results.items())),
        }
        if failed:
            body["failed"] = failed
        return Response(body, status_code=503 if failed else 200)
