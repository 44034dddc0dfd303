"""What a flood of Engine.IO handshakes without credentials holds in an API process.

    MAILBOX_BENCH_PROFILE=test2 uv run python bench/socket_flood.py [--handshakes 5000]

Brings the profile's stack up, then for two `mailbox-service serve` processes in turn, one
with the default session cap (`MAILBOX_RATE_SOCKETS_PER_ADDRESS=50`) and one without (0),
sends `--handshakes` polling handshakes from one address through 32 connections and prints
how many were accepted and refused, and the server's resident memory before and after. The
auth timeout is raised to 10 minutes for the run, so no session is closed while it counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil

from mailbox_devtools.devstack import Stack, StackConfig

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(cap: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "MAILBOX_LOG_FORMAT": "json",
        "MAILBOX_RATE_SOCKETS_PER_ADDRESS": str(cap),
        "MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S": "600",
        "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbox_service", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("serve did not become live")


async def flood(url: str, count: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    todo = iter(range(count))
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            for _ in todo:
                status = (await client.get(HANDSHAKE)).status_code
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(32)))
    return statuses


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--handshakes", type=int, default=5000)
    args = parser.parse_args()
    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    for cap in (50, 0):
        process, url = serve(cap)
        try:
            before = rss_mb(process.pid)
            started = time.perf_counter()
            statuses = await flood(url, args.handshakes)
            elapsed = time.perf_counter() - started
            after = rss_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=15)
        label = f"cap {cap}" if cap else "no cap"
        print(
            f"{label:>7}: {args.handshakes} handshakes from one address in {elapsed:.1f} s -> "
            f"{statuses.get(200, 0)} accepted, {statuses.get(429, 0)} refused (429); "
            f"server RSS {before:.0f} MB -> {after:.0f} MB (+{after - before:.0f} MB)"
        )


if __name__ == "__main__":
    asyncio.run(main())
