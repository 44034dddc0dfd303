"""What the audit trail costs the portal: list latency with and without it, in one run.

    MAILBOX_BENCH_PROFILE=test3 uv run python bench/audit.py            # 2,000 requests each
    MAILBOX_BENCH_PROFILE=test3 uv run python bench/audit.py --requests 5000

Two `mailbox-service serve` subprocesses on one stack and one database (`mailbox_bench_audit`):
one with the trail on (the default), one with `MAILBOX_AUDIT_ENABLED=false`. Each iteration
sends `GET /v1/mailbox/documents` (first page of 20, one account) to both over real HTTP, in
alternating order, so drift of the machine (other processes, the engine's caches) lands on
both alike. Rate limits are off for the run. Printed: p50/p95/p99/mean per server and the
ratios on/off; then the entries the run wrote and `verify` of today's chain. Nothing asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.auth import mint_token
from mailbox_service.clock import utcnow
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import load_settings
from mailbox_service.wiring.services import Services

DATABASE = "mailbox_bench_audit"
BENCH_SECRET = "bench-only-hs256-secret-0123456789abcdef"
ACCOUNT = "bench-audit-1"
LOG_DIR = Path(tempfile.gettempdir()) / f"mailbox-bench-audit-{os.getpid()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    for _ in range(150):
        if process.poll() is not None:
            raise SystemExit(f"serve ({name}) exited early; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"serve ({name}) did not start; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


async def timed_get(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await http.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET {url}: {response.status_code} {response.text[:200]}")
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="Timed requests per server.")
    parser.add_argument("--warmup", type=int, default=200, help="Untimed requests per server.")
    parser.add_argument("--documents", type=int, default=60, help="Documents in the account.")
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    os.environ.update(
        {
            "MAILBOX_MONGO_DATABASE": DATABASE,
            "MAILBOX_AUTH_JWT_SECRET": BENCH_SECRET,
            "MAILBOX_LOG_FORMAT": "json",
            "MAILBOX_RATE_PORTAL_PER_MINUTE": "0",
            "MAILBOX_RATE_INGEST_PER_MINUTE": "0",
            "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": "0",
        }
    )
    settings = load_settings()
    services = Services.build(settings)
    await services.mongo.drop_database(DATABASE)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    _, key = await services.api_keys.create("bench-audit", ["ingest"])
    ports = {"on": free_port(), "off": free_port()}
    servers = {
        "on": start("audit-on", ports["on"], {}),
        "off": start("audit-off", ports["off"], {"MAILBOX_AUDIT_ENABLED": "false"}),
    }
    token = mint_token(settings.auth, "bench-user", [ACCOUNT], ttl_s=3600)
    headers = {"Authorization": f"Bearer {token}"}
    pdf = render_pdf(["audit bench"], title="bench")
    samples: dict[str, list[float]] = {"on": [], "off": []}
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for i in range(args.documents):
                meta = json.dumps(
                    {
                        "type": "contract_letter",
                        "source_ref": f"bench-{i}",
                        "account_id": ACCOUNT,
                        "notify": False,
                        "attributes": {"contract_number": f"C-{i}", "letter_kind": "welcome"},
                    }
                )
                response = await http.post(
                    f"{base['off']}/v1/documents",
                    files={
                        "metadata": (None, meta, "application/json"),
                        "file": ("d.pdf", pdf, "application/pdf"),
                    },
                    headers={"Authorization": f"Bearer {key}"},
                )
                if response.status_code != 201:
                    raise SystemExit(f"ingest: {response.status_code} {response.text[:200]}")
            started = utcnow()
            for i in range(args.warmup + args.requests):
                order = ("on", "off") if i % 2 == 0 else ("off", "on")
                for name in order:
                    elapsed = await timed_get(http, f"{base[name]}/v1/mailbox/documents", headers)
                    if i >= args.warmup:
                        samples[name].append(elapsed)
        await asyncio.sleep(settings.audit.flush_interval_s * 2)  # let the last flush land
        written = await services.database.audit.count_documents(
            {"at": {"$gte": started}, "action": "mailbox.listed"}
        )
        day = started.strftime("%Y-%m-%d")
        report = await services.audit.chain.verify_day(day, settle_s=2)
    finally:
        for process in servers.values():
            stop(process)
        await services.mongo.drop_database(DATABASE)
        await services.close()

    print(
        f"audit benchmark: {os.cpu_count()} cores, stack {stack.config.profile}, "
        f"{args.requests} timed list requests per server (interleaved), page of 20"
    )
    print(f"  {'':<10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    figures: dict[str, list[float]] = {}
    for name in ("off", "on"):
        values = samples[name]
        figures[name] = [
            percentile(values, 50),
            percentile(values, 95),
            percentile(values, 99),
            statistics.fmean(values),
        ]
        row = "".join(f"{v:>9.2f}" for v in figures[name])
        print(f"  audit {name:<4}{row}")
    ratios = "".join(
        f"{on / off:>9.3f}" for on, off in zip(figures["on"], figures["off"], strict=True)
    )
    print(f"  on / off  {ratios}")
    print(
        f"  entries written by the audited server: {written} "
        f"(expected {args.warmup + args.requests})"
    )
    print(f"  verify {day}: {'ok' if report.ok else report.problem} ({report.entries} entries)")


if __name__ == "__main__":
    asyncio.run(main())
