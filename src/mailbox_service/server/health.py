"""Liveness and readiness: readiness names each dependency and which one failed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency

from mailbox_service.observability import metrics
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import response
from mailbox_service.server.rate_limit import EXEMPT

Check = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ReadinessChecks:
    """What `/health/ready` asks, by the name it reports: each a call that fails when down."""

    checks: Mapping[str, Check]


ReadinessChecksDep = NamedDependency[ReadinessChecks]


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


class CheckResult(msgspec.Struct, omit_defaults=True):
    """One dependency: `up` with its latency, or `down` with what went wrong."""

    status: Literal["up", "down"]
    latency_ms: float | None = None
    error: str | None = None


class Readiness(msgspec.Struct, omit_defaults=True):
    """The answer of `/health/ready` (documentation of the dict the handler builds)."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult]
    failed: list[str] | None = None


class HealthController(Controller):
    path = "/health"
    tags = ["health"]
    # Orchestrators probe from one address every few seconds: no flood may starve them.
    opt = {"rate_limit": EXEMPT}
    dependencies = {"readiness": provided(ReadinessChecks)}

    @get("/live", operation_id="healthLive", exclude_from_auth=True)
    async def live(self) -> dict[str, Literal["ok"]]:
        """The process is up and serving requests."""
        return {"status": "ok"}

    @get(
        "/ready",
        operation_id="healthReady",
        responses={503: response("A dependency did not answer; `failed` names it.", Readiness)},
    )
    async def ready(self, readiness: ReadinessChecksDep) -> Response[Readiness]:
        """Every dependency answers: 200, else 503 naming the ones that failed."""
        checks = readiness.checks
        results: dict[str, dict[str, Any]] = {}

        async def run(name: str, check: Check) -> None:
            results[name] = await _timed(check, limit_s=3.0)
            metrics.readiness(name, results[name]["status"] == "up")

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
        return Response(msgspec.convert(body, Readiness), status_code=503 if failed else 200)
