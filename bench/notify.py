"""Notification throughput end to end: ingestion → Redis → worker → SMTP capture.

    MAILBOX_BENCH_PROFILE=test5 uv run python bench/notify.py [--count 2000]
        [--concurrency 16] [--via http|inprocess] [--processes 1] [--threads 8]

Brings the profile's stack up (reusing it if running), starts `mailbox-service worker` with
the given (default) settings and, with `--via http`, a `mailbox-service serve`, then ingests
`--count` invoices for one paperless account as fast as `--concurrency` allows, and waits for
every email to land in the capture's maildir. Prints:
  * emails/s end to end (first ingestion start to last email arrival) and the ingestion rate;
  * latency per document from its ingestion (the moment the POST returned) to its email's
    arrival at the capture (file names carry the arrival in ns): p50, p95, max;
  * a raw baseline in the same run: the same composed message sent with plain smtplib, same
    thread count, one kept connection per thread, to the same capture;
  * where the time goes: the worker's own per-step timings, and CPU seconds per process
    (worker, API, bench, and each stack server), to name the bottleneck, and what one lookup
    and one update by `_id` cost straight from the driver, with the server's plan, and the
    same update on copies of those documents in a collection with no index but `_id` (on
    DocumentDB every update re-indexes the whole document in every index).
  * webhooks (unless `--no-webhooks`): the worker tells the sender `document.delivered` for
    each email, so every document also makes one signed webhook. After the run above (no
    endpoint: events are recorded and dispatched to nobody), `--webhook-rounds` rounds of the
    same `--count` with an endpoint subscribed to every event and a local receiver (in this
    process, checking every signature), then without (endpoint revoked). Prints webhooks/s
    end to end (first ingestion start to the last webhook's arrival), ingest→webhook latency,
    and each round's email figure with webhooks against the mean of the runs without before
    and after it, and the median of those ratios: it must stay above 0.9.
Runs in a database and a bucket of its own (`--database`, default `bench_notify` and
`bench-notify`), emptied when the run starts, so neither test data nor earlier runs skew it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email.parser
import email.policy
import hashlib
import hmac
import io
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgspec
import psutil
from aiohttp import web
from minio.deleteobjects import DeleteObject

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.log import configure_logging
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings, load_settings
from mailbox_service.storage.documents import blob_key
from mailbox_service.wiring.services import Services

WARMUP = 20
HEADERS_ONLY = email.parser.BytesHeaderParser(policy=email.policy.default)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# -- processes ----------------------------------------------------------------------------


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_line(process: subprocess.Popen[bytes], log: Path, needle: bytes) -> None:
    deadline = time.monotonic() + 60
    while needle not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{log.name}: did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def wait_http(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU of a process and, by default, its descendants (PostgreSQL forks a
    backend per connection; `worker --processes N` spawns N)."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        family = root.children(recursive=True) if descendants else []
        for proc in [root, *family]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return total
    except psutil.NoSuchProcess:
        return 0.0


# -- the maildir --------------------------------------------------------------------------


@dataclass
class Arrivals:
    """Emails in the capture's maildir, by document id, with their arrival in ns."""

    maildir: Path
    since_ns: int
    seen: set[str] = field(default_factory=set)
    by_document: dict[str, list[int]] = field(default_factory=dict)

    def scan(self) -> None:
        for name in os.listdir(self.maildir):
            if not name.endswith(".eml") or name in self.seen:
                continue
            arrived = int(name.split("-", 1)[0])
            self.seen.add(name)
            if arrived < self.since_ns:
                continue
            with (self.maildir / name).open("rb") as fh:
                headers = HEADERS_ONLY.parse(fh)
            document_id = headers.get("X-Mailbox-Document-Id")
            if document_id:
                self.by_document.setdefault(str(document_id), []).append(arrived)

    def count(self, ids: Iterable[str]) -> int:
        return sum(1 for i in ids if i in self.by_document)


# -- ingestion ----------------------------------------------------------------------------


def metadata(account_id: str, n: int) -> dict[str, Any]:
    return {
        "type": "invoice",
        "source_ref": f"bench-{uuid.uuid4().hex}",
        "account_id": account_id,
        "attributes": {
            "invoice_number": f"BENCH-{n:06d}",
            "total_amount": f"{10 + n % 990}.{n % 100:02d}",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
    }


BOUNDARY = "bench-notify-boundary-7d1f0c2e"


def multipart(metadata: bytes, pdf: bytes) -> bytes:
    """`metadata` and `file` parts, as POST /v1/documents expects them."""
    head = f"--{BOUNDARY}\r\n"
    return b"".join(
        [
            head.encode(),
            b'Content-Disposition: form-data; name="metadata"\r\n',
            b"Content-Type: application/json\r\n\r\n",
            metadata,
            f"\r\n{head}".encode(),
            b'Content-Disposition: form-data; name="file"; filename="invoice.pdf"\r\n',
            b"Content-Type: application/pdf\r\n\r\n",
            pdf,
            f"\r\n--{BOUNDARY}--\r\n".encode(),
        ]
    )


class Ingestor:
    """Posts documents over HTTP (`serve`) or calls the ingest service in-process."""

    def __init__(
        self,
        services: Services,
        account: str,
        key: str,
        url: str | None,
        server_log: Path | None = None,
    ) -> None:
        self.server_log = server_log
        self.services = services
        self.account = account
        self.key = key
        self.url = url
        self.pdf = render_pdf(["Invoice for the notification benchmark"], title="Invoice")
        # aiohttp, not httpx: httpx's connection pool bookkeeping alone took most of a CPU
        # here, on a machine the benchmark client shares with everything it measures.
        self.client = (
            aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=60)) if url else None
        )
        self.ingested_ns: dict[str, int] = {}
        self.ids: list[str] = []

    async def one(self, n: int) -> str:
        meta = metadata(self.account, n)
        if self.client is not None:
            async with self.client.post(
                "/v1/documents",
                data=multipart(msgspec.json.encode(meta), self.pdf),
                headers={
                    "Authorization": f"Bearer {self.key}",
                    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                },
            ) as response:
                body = await response.read()
            if response.status != 201:
                tail = self.server_log.read_text()[-3000:] if self.server_log else ""
                raise RuntimeError(f"ingest failed: {response.status} {body!r}\n{tail}")
            document_id = str(msgspec.json.decode(body)["id"])
        else:
            incoming = IncomingFile(
                data=io.BytesIO(self.pdf),
                filename="invoice.pdf",
                size=len(self.pdf),
                sha256=hashlib.sha256(self.pdf).hexdigest(),
                content_type="application/pdf",
            )
            outcome = await self.services.ingest.accept(
                convert_metadata(meta), incoming, source="bench-notify"
            )
            document_id = str(outcome.document["_id"])
        self.ingested_ns[document_id] = time.time_ns()
        self.ids.append(document_id)
        return document_id

    async def many(self, count: int, concurrency: int, offset: int = 0) -> list[str]:
        limit = asyncio.Semaphore(concurrency)

        async def bounded(n: int) -> str:
            async with limit:
                return await self.one(n)

        return list(await asyncio.gather(*(bounded(offset + n) for n in range(count))))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def wait_all(arrivals: Arrivals, ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        await asyncio.to_thread(arrivals.scan)
        done = arrivals.count(ids)
        if done == len(ids):
            return
        if time.monotonic() > deadline:
            print(f"!! timed out: {done}/{len(ids)} emails arrived", file=sys.stderr)
            return
        await asyncio.sleep(0.5)


# -- webhooks -------------------------------------------------------------------------------


class HookReceiver:
    """A sender's receiver: checks each signature (Standard Webhooks, written here from the
    specification) and notes when each document's `document.delivered` arrived."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrivals: dict[str, int] = {}
        self.received = 0
        self.bad_signatures = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    def valid(self, headers: Any, body: bytes) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        offered = [p.partition(",")[2] for p in headers["webhook-signature"].split()]
        return any(hmac.compare_digest(expected, sig) for sig in offered)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time_ns()
        self.received += 1
        if not self.valid(request.headers, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        event = msgspec.json.decode(body)
        if event["type"] == "document.delivered":
            self.arrivals.setdefault(event["data"]["document_id"], arrived)
        return web.Response(status=204)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{self.port}/hook"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def wait_hooks(receiver: HookReceiver, ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        done = sum(i in receiver.arrivals for i in ids)
        if done == len(ids):
            return
        if time.monotonic() > deadline:
            print(f"!! timed out: {done}/{len(ids)} webhooks arrived", file=sys.stderr)
            return
        await asyncio.sleep(0.2)


@dataclass
class Phase:
    """One measured batch: emails (and webhooks, when a receiver listened)."""

    name: str
    emails: int
    emails_per_s: float
    email_p50: float
    email_p95: float
    webhooks: int = 0
    webhooks_per_s: float = 0.0
    webhook_p50: float = 0.0
    webhook_p95: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process during the run (what it costs, whatever the neighbours do)."""


async def measured_phase(
    name: str,
    ingestor: Ingestor,
    maildir: Path,
    args: argparse.Namespace,
    offset: int,
    receiver: HookReceiver | None,
    cpu: Callable[[], dict[str, float]],
) -> Phase:
    cpu_before = cpu()
    arrivals = Arrivals(maildir, time.time_ns())
    started_ns = time.time_ns()
    ids = await ingestor.many(args.count, args.concurrency, offset=offset)
    await wait_all(arrivals, ids, args.timeout)
    arrived = [min(arrivals.by_document[i]) for i in ids if i in arrivals.by_document]
    email_ms = [
        (min(arrivals.by_document[i]) - ingestor.ingested_ns[i]) / 1e6
        for i in ids
        if i in arrivals.by_document
    ]
    phase = Phase(
        name,
        len(arrived),
        len(arrived) / ((max(arrived, default=started_ns + 1) - started_ns) / 1e9),
        percentile(email_ms, 0.5),
        percentile(email_ms, 0.95),
    )
    if receiver is not None:
        await wait_hooks(receiver, ids, args.timeout)
        hooks = [receiver.arrivals[i] for i in ids if i in receiver.arrivals]
        hook_ms = [
            (receiver.arrivals[i] - ingestor.ingested_ns[i]) / 1e6
            for i in ids
            if i in receiver.arrivals
        ]
        phase.webhooks = len(hooks)
        phase.webhooks_per_s = len(hooks) / (
            (max(hooks, default=started_ns + 1) - started_ns) / 1e9
        )
        phase.webhook_p50 = percentile(hook_ms, 0.5)
        phase.webhook_p95 = percentile(hook_ms, 0.95)
    phase.cpu = {name: seconds - cpu_before[name] for name, seconds in cpu().items()}
    return phase


async def webhook_phases(
    services: Services,
    ingestor: Ingestor,
    maildir: Path,
    args: argparse.Namespace,
    off: Phase,
    cpu: Callable[[], dict[str, float]],
) -> None:
    """Rounds of (with an endpoint and a receiver, then without); prints the comparison.

    Each round's email figure with webhooks is compared with the mean of the runs without
    just before and just after it, so a neighbour's load on the shared machine shifts both
    sides; the median over the rounds is the figure."""
    receiver = HookReceiver()
    url = await receiver.start()
    operations = services.webhooks
    phases = [off]
    offset = WARMUP + 2 * args.count
    try:
        for _ in range(args.webhook_rounds):
            endpoint = await operations.create(
                source="bench-notify", url=url, events=["*"], by="bench"
            )
            receiver.secret = endpoint.secret
            phases.append(
                await measured_phase("on", ingestor, maildir, args, offset, receiver, cpu)
            )
            await operations.revoke(endpoint.id, "bench")
            offset += args.count
            phases.append(await measured_phase("off", ingestor, maildir, args, offset, None, cpu))
            offset += args.count
    finally:
        await receiver.close()
    print(f"  webhooks ({args.count} documents a run, one document.delivered webhook each)")
    for phase in phases:
        hooks = (
            f"   webhooks {phase.webhooks}/{args.count} {phase.webhooks_per_s:6.1f}/s  "
            f"(ingest→receiver p50 {phase.webhook_p50:6.0f} ms, "
            f"p95 {phase.webhook_p95:6.0f} ms)"
            if phase.name == "on"
            else ""
        )
        print(
            f"    {phase.name:<4} emails {phase.emails_per_s:6.1f}/s  "
            f"(p50 {phase.email_p50:6.0f} ms, p95 {phase.email_p95:6.0f} ms){hooks}"
        )
    print("    CPU seconds per run     " + "  ".join(f"{name:>8}" for name in phases[0].cpu))
    for phase in phases:
        print(
            f"    {phase.name:<4}                    "
            + "  ".join(f"{seconds:8.1f}" for seconds in phase.cpu.values())
        )
    ratios = [
        phases[i].emails_per_s / ((phases[i - 1].emails_per_s + phases[i + 1].emails_per_s) / 2)
        for i in range(1, len(phases), 2)
    ]
    rates = [p.webhooks_per_s for p in phases if p.name == "on"]
    print(
        f"    email ratio on / off     {statistics.median(ratios):8.3f}  median of "
        f"{', '.join(f'{r:.3f}' for r in ratios)} (each against the runs without before and "
        "after it; must stay above 0.9)"
    )
    print(
        f"    webhooks end to end      {statistics.median(rates):8.1f} events/s  median "
        f"(first ingestion start to the last webhook's arrival)"
    )
    print(
        f"    receiver                 {receiver.received} requests, {receiver.bad_signatures} "
        "bad signatures"
    )


# -- the raw baseline ---------------------------------------------------------------------


def raw_baseline(settings: Settings, message: bytes, count: int, threads: int) -> float:
    """emails/s of plain smtplib sends of `message`, `threads` kept connections."""
    per_thread = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def send(n: int) -> None:
        with smtplib.SMTP(settings.smtp.host, settings.smtp.port, local_hostname="bench") as smtp:
            barrier.wait()
            for _ in range(n):
                smtp.sendmail("bench@mailbox.invalid", ["raw-baseline@example.org"], message)

    workers = [threading.Thread(target=send, args=(n,)) for n in per_thread]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def first_capture(maildir: Path, since_ns: int) -> Path:
    names = sorted(n for n in os.listdir(maildir) if n.endswith(".eml"))
    return maildir / next(n for n in names if int(n.split("-", 1)[0]) >= since_ns)


def sent_message(path: Path) -> bytes:
    """A captured email without the capture's envelope lines: what the worker sent."""
    raw = path.read_bytes()
    while raw.startswith(b"X-Envelope-"):
        raw = raw.split(b"\r\n", 1)[1]
    return raw


def remove_blobs(services: Services, ids: list[str]) -> None:
    """The run's files, so repeated runs do not fill the bucket."""
    errors = services.blobs.client.remove_objects(
        services.blobs.bucket, (DeleteObject(blob_key(i)) for i in ids)
    )
    for error in errors:
        print(f"!! could not remove {error.name}: {error.message}", file=sys.stderr)


async def raw_driver_probe(services: Services, ids: list[str]) -> dict[str, Any]:
    """What one lookup and one update by `_id` cost on this server, straight from the driver,
    with the documents the run left behind (and the server's plan for the lookup)."""
    documents = services.database.documents
    count = await documents.estimated_document_count()
    sample = ids[:: max(1, len(ids) // 200)][:200]
    started = time.perf_counter()
    for document_id in sample:
        await documents.find_one({"_id": document_id})
    find_ms = (time.perf_counter() - started) * 1000 / len(sample)
    started = time.perf_counter()
    for document_id in sample:
        await documents.update_one({"_id": document_id}, {"$set": {"bench_probe": True}})
    update_ms = (time.perf_counter() - started) * 1000 / len(sample)
    bare = services.database.db["bench_probe_id_only"]
    await bare.delete_many({})
    await bare.insert_many([d async for d in documents.find({"_id": {"$in": sample}})])
    started = time.perf_counter()
    for document_id in sample:
        await bare.update_one({"_id": document_id}, {"$set": {"bench_probe": True}})
    bare_update_ms = (time.perf_counter() - started) * 1000 / len(sample)
    await bare.drop()
    indexes = len([i async for i in await documents.list_indexes()])
    started = time.perf_counter()
    for _ in sample:
        await services.database.db.command("ping")
    ping_ms = (time.perf_counter() - started) * 1000 / len(sample)
    plan = await services.database.db.command(
        "explain", {"find": "documents", "filter": {"_id": sample[0]}, "limit": 1}
    )
    planner = plan.get("queryPlanner", {})
    node = (planner.get("Plan") or {}).get("Node Type") or planner.get("winningPlan", {}).get(
        "stage", "?"
    )
    return {
        "documents": count,
        "find": find_ms,
        "update": update_ms,
        "bare_update": bare_update_ms,
        "indexes": indexes,
        "ping": ping_ms,
        "plan": node,
    }


# -- the worker's own timings ---------------------------------------------------------------


def worker_timings(log: Path) -> dict[str, dict[str, float]]:
    """Mean claim/deliver/record ms per channel from the worker's `notification.sent` lines."""
    sums: dict[str, dict[str, list[float]]] = {}
    for line in log.read_bytes().splitlines():
        if b"notification.sent" not in line:
            continue
        try:
            event = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue
        channel = sums.setdefault(event.get("channel", "?"), {})
        for key in ("claim_ms", "deliver_ms", "record_ms"):
            if key in event:
                channel.setdefault(key, []).append(float(event[key]))
    return {ch: {k: statistics.fmean(v) for k, v in values.items()} for ch, values in sums.items()}


# -- main -----------------------------------------------------------------------------------


async def bench(
    args: argparse.Namespace, stack: Stack, settings: Settings, env: dict[str, str], tmp: Path
) -> None:
    services = Services.build(settings)
    for name in (
        "documents",
        "accounts",
        "api_keys",
        "sender_events",
        "webhook_endpoints",
        "webhook_deliveries",
    ):
        await services.database.db[name].delete_many({})
    ctx = MigrationContext(settings, services.database, services.blobs)
    await Migrator(ctx, migrations_dir()).apply_pending()
    await services.blobs.ensure_bucket()  # the migration made it only on the first run
    account = f"bench-{uuid.uuid4().hex[:8]}"
    await services.accounts.update(
        account, by="bench", paperless=True, email=f"{account}@example.org", locale="de"
    )
    _, key = await services.api_keys.create("bench-notify", ["ingest"])

    worker_log = tmp / "worker.log"
    worker = start(
        ["worker", "--processes", str(args.processes), "--threads", str(args.threads)],
        worker_log,
        env,
    )
    server: subprocess.Popen[bytes] | None = None
    url = None
    ingestor: Ingestor | None = None
    try:
        wait_for_line(worker, worker_log, b"worker.started")
        if args.via == "http":
            port = 18000 + os.getpid() % 1000
            url = f"http://127.0.0.1:{port}"
            server = start(["serve", "--port", str(port)], tmp / "serve.log", env)
            wait_http(server, url, tmp / "serve.log")
        ingestor = Ingestor(services, account, key, url, tmp / "serve.log" if url else None)
        maildir = Path(env["MAILBOX_STACK_MAILDIR"])

        # Warm up connections and caches on both sides; not measured.
        warm = Arrivals(maildir, time.time_ns())
        warm_ids = await ingestor.many(WARMUP, args.concurrency)
        await wait_all(warm, warm_ids, 60)

        pids = {"worker": worker.pid, "bench": os.getpid()}
        if server is not None:
            pids["api (serve)"] = server.pid
        for status in stack.status():
            if status.pid:
                pids[status.name] = status.pid

        # The bench process's own children are the worker and the API: counted apart.
        def cpu(name: str, pid: int) -> float:
            return cpu_seconds(pid, descendants=name != "bench")

        cpu_before = {name: cpu(name, pid) for name, pid in pids.items()}

        def cpu_now() -> dict[str, float]:
            """The processes that do the work. Not PostgreSQL: its per-connection backends
            come and go during a run, and a closed one's CPU drops out of the sum."""
            return {
                name: cpu(name, pid)
                for name, pid in pids.items()
                if name in ("worker", "api (serve)", "ferretdb", "redis")
            }

        arrivals = Arrivals(maildir, time.time_ns())
        started_ns = time.time_ns()
        ids = await ingestor.many(args.count, args.concurrency, offset=WARMUP)
        ingested_ns = time.time_ns()
        await wait_all(arrivals, ids, args.timeout)
        wall = (time.time_ns() - started_ns) / 1e9
        cpu_after = {name: cpu(name, pid) for name, pid in pids.items()}

        arrived = [min(arrivals.by_document[i]) for i in ids if i in arrivals.by_document]
        duplicates = sum(len(arrivals.by_document.get(i, [])) > 1 for i in ids)
        end_ns = max(arrived) if arrived else time.time_ns()
        elapsed = (end_ns - started_ns) / 1e9
        latencies = [
            (min(arrivals.by_document[i]) - ingestor.ingested_ns[i]) / 1e6
            for i in ids
            if i in arrivals.by_document
        ]
        first_email = min(arrived) if arrived else end_ns

        message = await asyncio.to_thread(sent_message, first_capture(maildir, arrivals.since_ns))
        raw_rate = raw_baseline(settings, message, args.raw_count, args.threads)
        ours = len(arrived) / elapsed

        print(
            f"\nnotification benchmark: {args.count} invoices via {args.via}, "
            f"concurrency {args.concurrency}; worker --processes {args.processes} "
            f"--threads {args.threads}; {psutil.cpu_count()} CPUs"
        )
        print(f"  emails arrived           {len(arrived)}/{len(ids)}  (duplicates: {duplicates})")
        print(
            f"  end to end               {ours:8.1f} emails/s  ({elapsed:.1f} s, first "
            "ingestion start to last email)"
        )
        print(
            f"  ingestion                {len(ids) / ((ingested_ns - started_ns) / 1e9):8.1f} "
            f"docs/s  ({(ingested_ns - started_ns) / 1e9:.1f} s)"
        )
        delivery_rate = len(arrived) / max((end_ns - first_email) / 1e9, 1e-9)
        print(f"  delivery                 {delivery_rate:8.1f} emails/s  (first to last email)")
        print(
            f"  latency ingest→capture   p50 {percentile(latencies, 0.5):7.0f} ms   "
            f"p95 {percentile(latencies, 0.95):7.0f} ms   max {max(latencies, default=0):7.0f} ms"
        )
        print(
            f"  raw smtplib baseline     {raw_rate:8.1f} emails/s  ({args.raw_count} sends of "
            f"the same {len(message)}-byte message, {args.threads} threads)"
        )
        print(f"  ratio                    {ours / raw_rate:8.3f}  (ours / raw)")
        if args.webhooks:
            off = Phase(
                "off",
                len(arrived),
                ours,
                percentile(latencies, 0.5),
                percentile(latencies, 0.95),
                cpu={name: cpu_after[name] - cpu_before[name] for name in cpu_now()},
            )
            await webhook_phases(services, ingestor, maildir, args, off, cpu_now)
        probe = await raw_driver_probe(services, ids)
        print(
            f"  raw driver, by _id       find_one {probe['find']:5.1f} ms   update_one "
            f"{probe['update']:5.1f} ms   (ping {probe['ping']:.1f} ms; {probe['documents']} "
            f"documents; plan: {probe['plan']})"
        )
        print(
            f"                           update_one {probe['bare_update']:5.1f} ms with only the "
            f"_id index ({probe['indexes']} indexes on documents)"
        )
        if args.drain:
            stop(worker)
            # Queue documents with no worker running, then time a fresh worker emptying the
            # queue: the worker's own rate, without sharing the machine with ingestion.
            queued = await ingestor.many(args.drain, args.concurrency, offset=WARMUP + args.count)
            drain_log = tmp / "worker-drain.log"
            drained = Arrivals(maildir, time.time_ns())
            worker = start(
                ["worker", "--processes", str(args.processes), "--threads", str(args.threads)],
                drain_log,
                env,
            )
            wait_for_line(worker, drain_log, b"worker.started")
            drain_start = time.time_ns()
            await wait_all(drained, queued, args.timeout)
            last = max(min(drained.by_document[i]) for i in queued if i in drained.by_document)
            rate = drained.count(queued) / ((last - drain_start) / 1e9)
            total = await services.database.documents.estimated_document_count()
            print(
                f"  worker alone             {rate:8.1f} emails/s  (draining {args.drain} queued "
                f"documents, worker start to last email; {total} documents in the collection)"
            )
        print("  worker step timings (mean ms)")
        for channel, steps in sorted(worker_timings(worker_log).items()):
            parts = "  ".join(f"{k.removesuffix('_ms')} {v:6.2f}" for k, v in steps.items())
            print(f"    {channel:<9} {parts}")
        print(
            f"  CPU seconds during the run ({wall:.1f} s wall, "
            f"{psutil.cpu_count()} CPUs = {wall * (psutil.cpu_count() or 1):.0f} CPU-s)"
        )
        used = {name: cpu_after[name] - cpu_before[name] for name in pids}
        for name, seconds in sorted(used.items(), key=lambda item: -item[1]):
            print(f"    {name:<12} {seconds:7.1f} s  {100 * seconds / wall:5.0f}% of one CPU")
    finally:
        if server is not None:
            stop(server)
        stop(worker)
        # The database stays for inspection (the next run empties it); the files go now.
        if ingestor is not None:
            await ingestor.close()
            await asyncio.to_thread(remove_blobs, services, ingestor.ids)
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", default=os.environ.get("MAILBOX_BENCH_PROFILE", "dev"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--via", choices=("http", "inprocess"), default="http")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--raw-count", type=int, default=2000)
    parser.add_argument(
        "--drain",
        type=int,
        default=0,
        metavar="N",
        help="then queue N more documents with the worker stopped and time a fresh worker "
        "draining them",
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--webhook-rounds",
        type=int,
        default=2,
        metavar="N",
        help="rounds of a run with a webhook endpoint and one without (default 2)",
    )
    parser.add_argument(
        "--no-webhooks",
        dest="webhooks",
        action="store_false",
        help="skip the runs with and without a webhook endpoint",
    )
    parser.add_argument(
        "--database",
        default="bench_notify",
        help="MongoDB database of the run, emptied when the run starts (the engine's costs "
        "depend on the collection's size, so a shared one skews the figures)",
    )
    args = parser.parse_args()

    stack = Stack(
        StackConfig.for_profile(args.profile),
        progress=lambda line: print(f"… {line}", file=sys.stderr),
    )
    stack.up()
    env = {
        **os.environ,
        **stack.env(),
        "MAILBOX_LOG_FORMAT": "json",
        "MAILBOX_MONGO_DATABASE": args.database,
        # Its own bucket too: the bench's files never look like orphans of the test database.
        "MAILBOX_S3_BUCKET": args.database.replace("_", "-"),
        "MAILBOX_PORTAL_URL": os.environ.get("MAILBOX_PORTAL_URL", "http://127.0.0.1:8000/portal"),
    }
    os.environ.update(env)
    settings = load_settings()
    configure_logging("json", level=30)
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        asyncio.run(bench(args, stack, settings, env, Path(tmp)))


if __name__ == "__main__":
    main()
