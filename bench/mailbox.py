"""Portal read latency as the collection grows, and real-time delivery latency.

    uv run python bench/mailbox.py                       # 10,000 documents, ~2 minutes
    uv run python bench/mailbox.py --sizes 10000,100000  # add a bigger size (load time is printed)
    uv run python bench/mailbox.py --sizes 10000,1000000 # the full run: long on FerretDB, see below

What it does, in one run against a real stack (profile test9, or MAILBOX_BENCH_PROFILE) and a
real `mailbox-service serve` subprocess, in its own database `mailbox_bench`:

1. Loads documents with insert_many (not HTTP) over --accounts accounts (10,000). A few
   "probe" accounts hold --probe-docs documents each (enough for 21 pages); the rest are spread
   over the other accounts. The probe accounts stay the same size at every collection size, as
   a heavy user's inbox does while the customer base grows.
2. For each size in --sizes (loading more documents between sizes) measures p50/p99 of
     * GET /v1/mailbox/documents, first page,
     * the same list after 20 "load more" steps (cursor of page 21),
     * GET /v1/mailbox/unread-count,
     * GET /v1/mailbox/documents/{id} (a lookup by _id, the shape the worker's outbox claim
       also uses, which is why FerretDB's cost for it shows up in the real-time figure),
   over real HTTP, and beside each the same MongoDB query sent through the raw pymongo driver
   (no HTTP, no auth, no JSON): where the raw figure moves with the collection size, the
   database engine sets it, not our code. The timed HTTP calls go through aiohttp: the client
   shares the two cores with the server, and httpx spent 1.5 ms more CPU per request than
   aiohttp (2.1 against 0.6 ms, measured on a detail request), a cost of the benchmark's
   client rather than of our API that a browser does not put on the server's machine. Each
   timed call is followed by an untimed point read, printed too: DocumentDB leaves part of a
   held cursor's cost to the next command, and it must not land on the figure of whichever
   call happens to come next (see `interleaved`).
3. With --clients Socket.IO clients connected (500) for the whole run, at each size, posts
   --events documents over HTTP one at a time, with a worker (`mailbox-service worker --queue
   realtime`) running, and measures the time from each 201 to the `document.created` event at
   the client of that account; and, to separate our real-time path from the worker's database
   work, the time from RealtimeEmitter.emit_created (what the worker calls) to the client.

Targets: p99 at the largest size <= 1.5 x p99 at the smallest; our API <= 2 x the raw driver
(p50 and p99) at every size; deep page p99 <= 1.5 x first page p99; real-time p95 <= 150 ms.
Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import socketio

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.auth import mint_token
from mailbox_service.cursors import Position
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.realtime.emitter import RealtimeEmitter
from mailbox_service.settings import Settings, load_settings
from mailbox_service.storage.documents import one_batch, source_key
from mailbox_service.storage.inbox import SORT, UNREAD_ROWS_BATCH, list_query, unread_pipeline
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.stored_document import LISTED_FIELDS
from mailbox_service.wiring.services import Services

DATABASE = "mailbox_bench"
PAGE = 20
DEEP_STEPS = 20
BENCH_SECRET = "bench-only-hs256-secret-0123456789abcdef"
EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_S = 3 * 365 * 86400


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(name: str, samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    figures = {"p50": statistics.median(ms), "p95": percentile(ms, 95), "p99": percentile(ms, 99)}
    print(
        f"    {name:<28} p50 {figures['p50']:8.2f} ms   p95 {figures['p95']:8.2f} ms"
        f"   p99 {figures['p99']:8.2f} ms   (n={len(ms)})",
        flush=True,
    )
    return figures


# --- data ------------------------------------------------------------------------------------


class Documents:
    """Stored-document shapes like the ingest pipeline writes them, generated fast."""

    TYPES = ("invoice", "contract_letter", "shipment_document")

    def __init__(self, accounts: int, probes: list[str], seed: int = 7) -> None:
        self.accounts = accounts
        self.probes = probes
        self.random = random.Random(seed)

    def one(self, account_id: str, n: int) -> Doc:
        r = self.random
        issued = EPOCH + dt.timedelta(seconds=r.randrange(SPAN_S))
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        doc_id = uuid.uuid4().hex
        doctype = self.TYPES[n % 3]
        read = r.random() < 0.6
        archived = r.random() < 0.1
        return {
            "_id": doc_id,
            "type": doctype,
            "source": "bench",
            "source_ref": f"bench-{doc_id}",
            "source_key": source_key("bench", f"bench-{doc_id}"),
            "account_id": account_id,
            "title": f"Invoice INV-{n:08d}" if doctype == "invoice" else f"Letter {n}",
            "attributes": {
                "invoice_number": f"INV-{n:08d}",
                "total_amount": "84.20",
                "currency": "EUR",
                "due_date": "2026-12-15",
            },
            "summary": {
                "invoice_number": f"INV-{n:08d}",
                "total_amount": "84.20",
                "currency": "EUR",
                "due_date": "2026-12-15",
            },
            "recipient": None,
            "issued_at": issued,
            "created_at": now,
            "blob": {
                "key": f"documents/{doc_id[:2]}/{doc_id}",
                "size": 48_213,
                "sha256": uuid.uuid4().hex * 2,
                "content_type": "application/pdf",
                "filename": f"{n}.pdf",
            },
            "delivery": {"mode": "digital", "reason": None, "email": None, "locale": "en"},
            "origin": "backfill",
            "fingerprint": uuid.uuid4().hex * 2,
            "read_at": issued + dt.timedelta(days=1) if read else None,
            "archived_at": issued + dt.timedelta(days=2) if archived else None,
            "first_downloaded_at": None,
            "notifications": {
                "email": {
                    "status": "sent",
                    "attempts": 1,
                    "error": None,
                    "reason": None,
                    "at": now,
                },
                "realtime": {
                    "status": "sent",
                    "attempts": 1,
                    "error": None,
                    "reason": None,
                    "at": now,
                },
            },
            "retain_until": issued + dt.timedelta(days=3650),
        }

    def batch(self, start: int, count: int, probe_docs: int) -> list[Doc]:
        out = []
        probe_total = probe_docs * len(self.probes)
        for n in range(start, start + count):
            if n < probe_total:
                account = self.probes[n % len(self.probes)]
            else:
                account = f"bench-{self.random.randrange(self.accounts - len(self.probes)):05d}"
            out.append(self.one(account, n))
        return out


async def load(services: Services, docs: Documents, start: int, end: int, probe_docs: int) -> float:
    """insert_many in batches, two in flight; returns seconds."""
    collection = services.database.documents
    batch_size = 2000
    started = time.perf_counter()
    last_report = started
    queue = list(range(start, end, batch_size))

    async def worker() -> None:
        nonlocal last_report
        while queue:
            first = queue.pop(0)
            batch = docs.batch(first, min(batch_size, end - first), probe_docs)
            await collection.insert_many(batch, ordered=False)
            if time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                done = first + len(batch) - start
                rate = done / (last_report - started)
                print(f"    … {first + len(batch):,} loaded ({rate:,.0f} docs/s)", flush=True)

    await asyncio.gather(worker(), worker())
    return time.perf_counter() - started


# --- reads -----------------------------------------------------------------------------------

Call = Callable[[int], Awaitable[Any]]


async def interleaved(
    n: int,
    calls: dict[str, Call],
    settle: Callable[[], Awaitable[Any]],
    deferred: dict[str, list[float]],
) -> dict[str, list[float]]:
    """Time each call n times, round-robin: a load spike on this shared machine hits them all.

    After each call, untimed, `settle` sends a trivial query; its time goes to `deferred`. On
    DocumentDB a query that holds a cursor (a find that may need a second batch, an aggregate)
    leaves 10-25 ms of its cost to the *next* command, whichever client sends it: without the
    settle query, a by-id lookup after the unread count measured 20 ms instead of 2, and page 21
    after the multi-batch first page 29 ms instead of 4, through the API and raw alike.
    """
    for i in range(3):  # warm-up
        for call in calls.values():
            await call(i)
            await settle()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for name in calls:
        deferred.setdefault(name, [])
    for i in range(n):
        for name, call in calls.items():
            started = time.perf_counter()
            await call(i)
            samples[name].append(time.perf_counter() - started)
            started = time.perf_counter()
            await settle()
            deferred[name].append(time.perf_counter() - started)
    return samples


async def deep_cursor(http: httpx.AsyncClient, token: str) -> str:
    cursor = None
    for _ in range(DEEP_STEPS):
        params: dict[str, Any] = {"limit": PAGE}
        if cursor:
            params["cursor"] = cursor
        response = await http.get(
            "/v1/mailbox/documents", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        cursor = response.json()["next_cursor"]
        if cursor is None:
            raise SystemExit("probe account has fewer than 21 pages; raise --probe-docs")
    assert cursor is not None
    return cursor


async def raw_deep_position(services: Services, account: str) -> Position:
    position = None
    for _ in range(DEEP_STEPS):
        found = services.database.documents.find(
            list_query([account], ListFilters(), position), LISTED_FIELDS
        )
        page = await found.sort(SORT).limit(PAGE).to_list()
        position = Position(page[-1]["issued_at"], page[-1]["_id"])
    assert position is not None
    return position


async def read_figures(
    http: httpx.AsyncClient,
    timed: aiohttp.ClientSession,
    services: Services,
    settings: Settings,
    probes: list[str],
    requests: int,
) -> dict[str, dict[str, float]]:
    tokens = [mint_token(settings.auth, f"user-{p}", [p], ttl_s=7200) for p in probes]
    cursors = [await deep_cursor(http, t) for t in tokens]
    positions = [await raw_deep_position(services, p) for p in probes]
    collection = services.database.documents
    # Documents in the middle of each probe inbox, for the by-id lookups.
    middle = [p.id for p in positions]

    async def get_ok(path: str, k: int, params: dict[str, Any]) -> None:
        """One timed API read as probe account k's user; anything but 200 ends the run."""
        headers = {"Authorization": f"Bearer {tokens[k]}"}
        async with timed.get(path, params=params, headers=headers) as response:
            body = await response.read()
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status} {body[:500]!r}")

    def api(path: str, deep: bool = False) -> Call:
        async def call(i: int) -> None:
            k = i % len(probes)
            params: dict[str, Any] = {} if path.endswith("unread-count") else {"limit": PAGE}
            if deep:
                params["cursor"] = cursors[k]
            await get_ok(path, k, params)

        return call

    def raw_list(deep: bool, single_batch: bool = True) -> Call:
        # What the API sends (one batch); without it DocumentDB runs a held cursor.
        async def call(i: int) -> None:
            k = i % len(probes)
            after = positions[k] if deep else None
            found = collection.find(list_query([probes[k]], ListFilters(), after), LISTED_FIELDS)
            page = found.sort(SORT)
            page = one_batch(page, PAGE + 1) if single_batch else page.limit(PAGE + 1)
            await page.to_list()

        return call

    async def api_detail(i: int) -> None:
        k = i % len(probes)
        await get_ok(f"/v1/mailbox/documents/{middle[k]}", k, {})

    async def raw_detail(i: int) -> None:
        k = i % len(probes)
        await collection.find_one({"_id": middle[k], "account_id": probes[k]})

    async def raw_unread(i: int) -> None:
        cursor = await collection.aggregate(
            unread_pipeline([probes[i % len(probes)]]), batchSize=UNREAD_ROWS_BATCH
        )
        await cursor.to_list()

    async def settle() -> None:
        await collection.find_one({"_id": "bench-settle"})  # no such document: a point read

    deferred: dict[str, list[float]] = {}
    samples = await interleaved(
        requests,
        {
            "first page (API)": api("/v1/mailbox/documents"),
            "first page (raw)": raw_list(False),
            "first page (multi)": raw_list(False, single_batch=False),
            "page 21 (API)": api("/v1/mailbox/documents", deep=True),
            "page 21 (raw)": raw_list(True),
            "unread (API)": api("/v1/mailbox/unread-count"),
            "unread (raw)": raw_unread,
            "by id (API)": api_detail,
            "by id (raw)": raw_detail,
        },
        settle,
        deferred,
    )
    labels = {"API": "API, aiohttp", "raw": "raw pymongo", "multi": "raw, limit(+21)"}
    figures = {}
    for name, values in samples.items():
        kind, source = name[:-1].split(" (")
        figures[name] = row(f"{kind} ({labels[source]})", values)
    print(
        "    a point read sent after each (engine work left to the next command), p50 ms: "
        + ", ".join(f"{name} {statistics.median(v) * 1000:.1f}" for name, v in deferred.items()),
        flush=True,
    )
    return figures


# --- real time -------------------------------------------------------------------------------


class RealtimeClients:
    """Many connected portal clients, one account each, recording when events arrive."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.accounts: list[str] = []
        self.clients: list[socketio.AsyncClient] = []
        self.arrivals: dict[str, float] = {}
        self.arrived = asyncio.Event()

    def _record(self, data: dict[str, Any]) -> None:
        self.arrivals[data["id"]] = time.perf_counter()
        self.arrived.set()

    async def connect(self, count: int) -> None:
        gate = asyncio.Semaphore(25)

        async def one(account: str) -> None:
            client = socketio.AsyncClient(reconnection=False)
            client.on("document.created", self._record)
            token = mint_token(self.settings.auth, f"rt-{account}", [account], ttl_s=7200)
            async with gate:
                await client.connect(
                    self.url, auth={"token": token}, transports=["websocket"], wait_timeout=20
                )
            self.clients.append(client)

        self.accounts = [f"bench-rt-{i:04d}" for i in range(count)]
        started = time.perf_counter()
        await asyncio.gather(*(one(a) for a in self.accounts))
        print(
            f"  {len(self.clients)} Socket.IO clients connected in "
            f"{time.perf_counter() - started:.1f} s (they stay connected from here on)",
            flush=True,
        )

    async def wait_for(self, doc_id: str, deadline: float) -> float | None:
        while doc_id not in self.arrivals and time.perf_counter() < deadline:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - time.perf_counter())
            except TimeoutError:
                break
        return self.arrivals.get(doc_id)

    async def close(self) -> None:
        await asyncio.gather(*(c.disconnect() for c in self.clients), return_exceptions=True)


async def realtime_figures(
    clients: RealtimeClients,
    http: httpx.AsyncClient,
    key: str,
    emitter: RealtimeEmitter,
    events: int,
) -> dict[str, dict[str, float]]:
    """201 → event (the whole pipeline) and emit → event (Redis + Socket.IO only)."""
    pdf = render_pdf(["Invoice", "84.20 EUR"])
    after_201: list[float] = []
    after_emit: list[float] = []
    missed = 0
    for n in range(events):
        account = clients.accounts[(n * 7919) % len(clients.accounts)]
        metadata = {
            "type": "invoice",
            "source_ref": f"rt-{uuid.uuid4().hex}",
            "account_id": account,
            "attributes": {
                "invoice_number": f"RT-{n}",
                "total_amount": "1.00",
                "currency": "EUR",
                "due_date": "2026-12-15",
            },
        }
        response = await http.post(
            "/v1/documents",
            files={
                "metadata": (None, json.dumps(metadata), "application/json"),
                "file": ("rt.pdf", pdf, "application/pdf"),
            },
            headers={"Authorization": f"Bearer {key}"},
        )
        answered = time.perf_counter()
        if response.status_code != 201:
            raise SystemExit(f"ingest failed: {response.status_code} {response.text}")
        arrival = await clients.wait_for(response.json()["id"], answered + 10)
        if arrival is None:
            missed += 1
        else:
            after_201.append(arrival - answered)

        direct_id = uuid.uuid4().hex
        direct: Doc = {
            "_id": direct_id,
            "type": "invoice",
            "account_id": account,
            "title": "Direct",
            "summary": {},
            "issued_at": dt.datetime.now(dt.UTC),
        }
        emitted = time.perf_counter()
        await emitter.emit_created(direct)
        arrival = await clients.wait_for(direct_id, emitted + 10)
        if arrival is not None:
            after_emit.append(arrival - emitted)
    figures = {
        "201": row("ingest 201 → document.created", after_201),
        "emit": row("emit → document.created", after_emit),
    }
    print(f"    events missed (none within 10 s): {missed}")
    if not after_201:
        raise SystemExit(f"no event arrived; worker and server logs are in {LOG_DIR}")
    return figures


async def warm_up_worker(clients: RealtimeClients, http: httpx.AsyncClient, key: str) -> None:
    """Wait until the worker delivers (its start-up is not part of any figure)."""
    pdf = render_pdf(["warm-up"])
    metadata = {
        "type": "invoice",
        "source_ref": f"rt-{uuid.uuid4().hex}",
        "account_id": clients.accounts[0],
        "attributes": {
            "invoice_number": "RT-WARM",
            "total_amount": "1.00",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
    }
    response = await http.post(
        "/v1/documents",
        files={
            "metadata": (None, json.dumps(metadata), "application/json"),
            "file": ("rt.pdf", pdf, "application/pdf"),
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    if await clients.wait_for(response.json()["id"], time.perf_counter() + 90) is None:
        raise SystemExit(f"the worker delivered nothing within 90 s; logs in {LOG_DIR}")


# --- orchestration ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOG_DIR = Path(tempfile.gettempdir()) / f"mailbox-bench-{os.getpid()}"


def start(args: list[str], ready_url: str | None = None) -> subprocess.Popen[bytes]:
    """`mailbox-service ARGS` in a subprocess, its output in LOG_DIR (printed on failure)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{args[0]}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", *args], stdout=out, stderr=subprocess.STDOUT
        )
    if ready_url is None:
        return process
    for _ in range(150):
        if process.poll() is not None:
            raise SystemExit(f"mailbox-service {' '.join(args)} exited early; see {log}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"mailbox-service {' '.join(args)} did not start; see {log}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def verdict(name: str, value: float, limit: float) -> None:
    state = "ok" if value <= limit else "MISSED"
    print(f"  {name:<58} {value:6.2f} (target <= {limit:.2f})  {state}")


def compare(results: dict[int, dict[str, dict[str, float]]]) -> None:
    small, large = min(results), max(results)
    print("\nsummary (p99 ratios)")
    for kind in ("first page", "page 21", "unread", "by id"):
        if small != large:
            for source in ("API", "raw"):
                ratio = (
                    results[large][f"{kind} ({source})"]["p99"]
                    / results[small][f"{kind} ({source})"]["p99"]
                )
                verdict(f"{kind} ({source}): p99 at {large:,} / p99 at {small:,}", ratio, 1.5)
    for size in sorted(results):
        for source in ("API", "raw"):
            ratio = (
                results[size][f"page 21 ({source})"]["p99"]
                / results[size][f"first page ({source})"]["p99"]
            )
            verdict(f"page 21 / first page ({source}) at {size:,}", ratio, 1.5)
    print("\nsummary (API / raw driver)")
    for size in sorted(results):
        for kind in ("first page", "page 21", "unread", "by id"):
            for q in ("p50", "p99"):
                ratio = results[size][f"{kind} (API)"][q] / results[size][f"{kind} (raw)"][q]
                verdict(f"{kind} {q} at {size:,}: API / raw", ratio, 2.0)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="10000",
        help="Comma-separated collection sizes to measure at (ascending).",
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=4, help="Accounts whose reads are timed.")
    parser.add_argument(
        "--probe-docs",
        type=int,
        default=520,
        help="Documents per probe account (~10%% are archived; 21 inbox pages of 20 need 420).",
    )
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per figure.")
    parser.add_argument("--clients", type=int, default=500, help="Socket.IO clients; 0 skips.")
    parser.add_argument("--events", type=int, default=100, help="Documents posted for latency.")
    parser.add_argument("--keep-data", action="store_true", help="Keep the mailbox_bench database.")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if sizes[0] < args.probes * args.probe_docs:
        raise SystemExit(f"--sizes must start at >= {args.probes * args.probe_docs:,}")

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    os.environ.update(
        {
            "MAILBOX_MONGO_DATABASE": DATABASE,
            "MAILBOX_AUTH_JWT_SECRET": BENCH_SECRET,
            "MAILBOX_LOG_FORMAT": "json",
        }
    )
    settings = load_settings()
    services = Services.build(settings)
    await services.mongo.drop_database(DATABASE)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(["serve", "--port", str(port)], f"{url}/health/live")
    worker = None
    print(
        f"mailbox benchmark: {os.cpu_count()} cores, stack {stack.config.profile}, "
        f"{args.accounts:,} accounts, {args.probes} probe accounts x {args.probe_docs} docs"
    )
    clients = RealtimeClients(url, settings)
    emitter = RealtimeEmitter(settings.redis.url)
    try:
        results: dict[int, dict[str, dict[str, float]]] = {}
        realtime: dict[int, dict[str, dict[str, float]]] = {}
        loaded = 0
        docs = Documents(args.accounts, [f"bench-probe-{i}" for i in range(args.probes)])
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            httpx.AsyncClient(base_url=url, timeout=120) as http,
            aiohttp.ClientSession(url, timeout=timeout) as timed,
        ):
            if args.clients:
                _, key = await services.api_keys.create("bench-rt", ["ingest"])
                worker = start(["worker", "--queue", "realtime", "--no-sweep", "--threads", "4"])
                await clients.connect(args.clients)
                await warm_up_worker(clients, http, key)
            for size in sizes:
                seconds = await load(services, docs, loaded, size, args.probe_docs)
                print(
                    f"\n{size:,} documents: loaded {size - loaded:,} in {seconds:.1f} s "
                    f"({(size - loaded) / seconds:,.0f} docs/s)",
                    flush=True,
                )
                loaded = size
                results[size] = await read_figures(
                    http, timed, services, settings, docs.probes, args.requests
                )
                if args.clients:
                    print(f"  real time, {len(clients.clients)} clients connected:", flush=True)
                    realtime[size] = await realtime_figures(
                        clients, http, key, emitter, args.events
                    )
        compare(results)
        for size, figures in realtime.items():
            verdict(f"real time p95 at {size:,}: 201 → event (ms)", figures["201"]["p95"], 150)
            verdict(f"real time p95 at {size:,}: emit → event (ms)", figures["emit"]["p95"], 150)
    finally:
        await clients.close()
        await emitter.close()
        stop(worker)
        stop(server)
        if not args.keep_data:
            await services.mongo.drop_database(DATABASE)
        await services.close()
        if os.environ.get("MAILBOX_BENCH_KEEP_STACK") != "1":
            stack.down()


if __name__ == "__main__":
    asyncio.run(main())
