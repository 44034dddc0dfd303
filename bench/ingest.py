"""Ingestion throughput and latency against a raw baseline, plus upload memory.

    uv run python bench/ingest.py [--documents 600] [--concurrency 8] [--size-kib 100]

Runs on its own stack profile (test9 by default, MAILBOX_BENCH_PROFILE to change), starts a
real `mailbox-service serve` process, and measures in the same run:
  * ingestion: N concurrent clients POST 100 KiB PDFs over HTTP;
  * raw baseline: the same number of MinIO put_object + MongoDB insert_one, same concurrency,
    no HTTP, no validation. Like with like: the raw documents have the shape of a stored ingest
    document and go into a collection with the same indexes as `documents` (every index costs
    each insert an entry);
  * the API process's RSS growth while one 50 MiB file is uploaded.

With --compare-metrics a second API process runs with MAILBOX_METRICS_ENABLED=false (tracing
is off in both: MAILBOX_OTEL_ENDPOINT unset), ingest rounds alternate between the two, and the
cost of metrics is printed as a throughput ratio and as API CPU per document.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import aiohttp
import anyio.to_thread
import httpx
import psutil
from pymongo import IndexModel

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import load_settings
from mailbox_service.wiring.services import Services


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(name: str, latencies: list[float], elapsed: float) -> dict[str, float]:
    row = {
        "docs_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }
    print(
        f"  {name:<10} {row['docs_per_s']:8.1f} docs/s   p50 {row['p50_ms']:7.1f} ms"
        f"   p99 {row['p99_ms']:7.1f} ms"
    )
    return row


async def run_concurrently(count: int, concurrency: int, one: Any) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def metadata(i: int, run: str) -> dict[str, Any]:
    return {
        "type": "invoice",
        "source_ref": f"bench-{run}-{i}",
        "account_id": f"acct-{i % 500}",
        "attributes": {
            "invoice_number": f"INV-{run}-{i}",
            "total_amount": "84.20",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
    }


def start_server(port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mailbox_service", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


async def http_ingest(
    url: str, key: str, pdf: bytes, count: int, concurrency: int
) -> tuple[list[float], float]:
    run = uuid.uuid4().hex[:8]
    # aiohttp, with the multipart body joined once per request: a sender has its own CPU, so
    # the load generator should take as little of ours as it can. httpx's encoder cost ~1 ms of
    # the shared 2 cores per 100 KiB document, and its client ~1.5 ms more per request than
    # aiohttp's (measured on a portal read: 2.1 against 0.6 ms).
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        boundary = uuid.uuid4().hex
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        meta_head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'.encode()
        )
        file_head = (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="i.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        async def one(i: int) -> None:
            meta = json.dumps(metadata(i, run)).encode()
            body = b"".join([meta_head, meta, file_head, pdf, tail])
            async with client.post("/v1/documents", data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 201:
                    raise SystemExit(f"ingest failed: {response.status} {answer[:500]!r}")

        return await run_concurrently(count, concurrency, one)


async def raw_collection(services: Services) -> tuple[Any, dict[str, Any]]:
    """`bench_raw` with the indexes of `documents`, and a stored ingest document as template."""
    documents = services.database.documents
    template = await documents.find_one({"origin": "api"})
    if template is None:
        raise SystemExit("no ingested document to copy the shape of (the warm-up stores some)")
    collection = services.database.db["bench_raw"]
    await collection.drop()
    indexes = [
        IndexModel(
            spec["key"],
            name=name,
            **{k: v for k, v in spec.items() if k in ("unique", "partialFilterExpression")},
        )
        async for spec in await documents.list_indexes()
        if (name := spec["name"]) != "_id_"
    ]
    await collection.create_indexes(indexes)
    return collection, template


async def raw_baseline(
    services: Services,
    raw: tuple[Any, dict[str, Any]],
    pdf: bytes,
    count: int,
    concurrency: int,
) -> tuple[list[float], float]:
    run = uuid.uuid4().hex[:8]
    collection, template = raw

    async def one(i: int) -> None:
        key = f"bench-raw/{run}/{i}"
        await anyio.to_thread.run_sync(
            lambda: services.blobs.client.put_object(
                services.blobs.bucket,
                key,
                io.BytesIO(pdf),
                len(pdf),
                content_type="application/pdf",
            )
        )
        ref = f"bench-{run}-{i}"
        await collection.insert_one(
            {
                **template,
                "_id": uuid.uuid4().hex,
                "source_ref": ref,
                "source_key": f"bench-raw\x1f{ref}",
                "blob": {**template["blob"], "key": key},
            }
        )

    return await run_concurrently(count, concurrency, one)


def upload_rss_growth(url: str, key: str, pid: int, size_mib: int) -> tuple[float, float]:
    """Peak RSS growth (MiB) of the API process while one large file streams in."""
    process = psutil.Process(pid)
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    pdf = render_pdf(["big"], padding=size_mib * 1024 * 1024 - 2048)

    def body() -> Any:
        meta = json.dumps(metadata(0, uuid.uuid4().hex[:8])).encode()
        boundary = b"benchboundary"
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'
        yield meta + b"\r\n--" + boundary
        yield b'\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'
        view = memoryview(pdf)
        for offset in range(0, len(pdf), 256 * 1024):
            yield bytes(view[offset : offset + 256 * 1024])
        yield b"\r\n--" + boundary + b"--\r\n"

    started = time.perf_counter()
    response = httpx.post(
        f"{url}/v1/documents",
        content=body(),
        timeout=120,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "multipart/form-data; boundary=benchboundary",
        },
    )
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if response.status_code != 201:
        raise SystemExit(f"large upload failed: {response.status_code} {response.text}")
    return (peak - baseline) / 2**20, elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size-kib", type=int, default=100)
    parser.add_argument("--large-mib", type=int, default=50)
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument(
        "--compare-metrics",
        action="store_true",
        help="also ingest into an API process without metrics (port + 1) and print the cost",
    )
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    settings = load_settings()
    services = Services.build(settings)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    _, key = await services.api_keys.create("bench", ["ingest"])
    os.environ.pop("MAILBOX_OTEL_ENDPOINT", None)
    server = start_server(args.port)
    url = f"http://127.0.0.1:{args.port}"
    bare = (
        start_server(args.port + 1, {"MAILBOX_METRICS_ENABLED": "false"})
        if args.compare_metrics
        else None
    )
    bare_url = f"http://127.0.0.1:{args.port + 1}"
    pdf = render_pdf(["Invoice", "84.20 EUR"], padding=args.size_kib * 1024 - 1500)
    try:
        print(
            f"ingest benchmark: {args.documents} x {len(pdf) / 1024:.0f} KiB, "
            f"concurrency {args.concurrency}, {os.cpu_count()} cores"
        )
        await http_ingest(url, key, pdf, min(50, args.documents), args.concurrency)  # warm-up
        if bare is not None:
            await http_ingest(bare_url, key, pdf, min(50, args.documents), args.concurrency)
        raw_target = await raw_collection(services)
        await raw_baseline(services, raw_target, pdf, min(50, args.documents), args.concurrency)
        rows: dict[str, list[dict[str, float]]] = {"ingest": [], "raw": [], "no_metrics": []}
        api, me = psutil.Process(server.pid), psutil.Process()
        cpu: dict[str, float] = {"api": 0.0, "bench": 0.0, "api_no_metrics": 0.0}

        def cpu_seconds(process: psutil.Process) -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        for _round in range(2):  # interleaved, so drift on a noisy machine hits both
            lat, el = await raw_baseline(
                services, raw_target, pdf, args.documents // 2, args.concurrency
            )
            rows["raw"].append(describe("raw", lat, el))
            before = (cpu_seconds(api), cpu_seconds(me))
            lat, el = await http_ingest(url, key, pdf, args.documents // 2, args.concurrency)
            rows["ingest"].append(describe("ingest", lat, el))
            cpu["api"] += cpu_seconds(api) - before[0]
            cpu["bench"] += cpu_seconds(me) - before[1]
            if bare is not None:
                bare_process = psutil.Process(bare.pid)
                before_bare = cpu_seconds(bare_process)
                lat, el = await http_ingest(
                    bare_url, key, pdf, args.documents // 2, args.concurrency
                )
                rows["no_metrics"].append(describe("no metrics", lat, el))
                cpu["api_no_metrics"] += cpu_seconds(bare_process) - before_bare
        per_doc = {k: v / (2 * (args.documents // 2)) * 1000 for k, v in cpu.items()}
        print(
            f"  CPU per ingested document: API process {per_doc['api']:.2f} ms, "
            f"HTTP client {per_doc['bench']:.2f} ms"
        )
        ingest = statistics.mean(r["docs_per_s"] for r in rows["ingest"])
        raw = statistics.mean(r["docs_per_s"] for r in rows["raw"])
        print(f"  ratio ingest/raw throughput: {ingest / raw:.2f} (target >= 0.70)")
        if bare is not None:
            bare_rate = statistics.mean(r["docs_per_s"] for r in rows["no_metrics"])
            print(
                f"  metrics on/off throughput: {ingest / bare_rate:.3f} "
                f"(overhead {(1 - ingest / bare_rate) * 100:+.1f}%, target < 5%); "
                f"API CPU per document {per_doc['api']:.2f} ms with metrics, "
                f"{per_doc['api_no_metrics']:.2f} ms without "
                f"({(per_doc['api'] / per_doc['api_no_metrics'] - 1) * 100:+.1f}%)"
            )
        growth, seconds = upload_rss_growth(url, key, server.pid, args.large_mib)
        print(
            f"  {args.large_mib} MiB upload: API RSS grew {growth:.1f} MiB (target <= 30), "
            f"{args.large_mib / seconds:.0f} MiB/s"
        )
    finally:
        for process in (server, bare):
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
        await services.database.db["bench_raw"].drop()
        await services.close()
        if os.environ.get("MAILBOX_BENCH_KEEP_STACK") != "1":
            stack.down()


if __name__ == "__main__":
    asyncio.run(main())
