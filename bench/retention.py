"""Retention purge throughput, and what the portal's latency does while a purge runs.

    uv run python bench/retention.py                  # 20,000 expired documents, a few minutes
    uv run python bench/retention.py --count 100000   # the issue's size (seeding takes long)

Against a real stack (profile test9, or MAILBOX_BENCH_PROFILE), in its own database
`retention_bench` and bucket `retention-bench` (created with object locking by the migrations):

1. Seeds --count expired documents (`retain_until` a day ago, the three built-in types, over
   --accounts accounts) with insert_many, and one small blob each with the MinIO SDK on 16
   threads; plus one probe account with --probe-docs current documents the portal reads.
2. Starts `mailbox-service serve` in a subprocess and measures GET /v1/mailbox/documents
   (first page of the probe account) --requests times with nothing else running.
3. Runs the purge (RetentionPurge.run, what `retention purge` and the worker run) in this
   process, while a client keeps reading that page as fast as it is answered; prints the
   purge's time and rate, and p50/p99 of the page during the purge next to the baseline.
4. Checks that exactly the probe account's documents and blobs are left.

Nothing is asserted except the final check; the figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from minio.deleteobjects import DeleteObject

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.auth import mint_token
from mailbox_service.lifecycle.retention import RetentionPurge
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import load_settings
from mailbox_service.storage.documents import source_key
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services

DATABASE = "retention_bench"
BUCKET = "retention-bench"
BENCH_SECRET = "bench-only-hs256-secret-0123456789abcdef"
PROBE = "bench-retention-probe"
TYPES = ("invoice", "contract_letter", "shipment_document")
BLOB = b"%PDF-1.4\n" + b"x" * 1024
LOG_DIR = Path(tempfile.gettempdir()) / f"retention-bench-{os.getpid()}"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def document(n: int, account_id: str, retain_until: dt.datetime) -> Doc:
    doc_id = uuid.uuid4().hex
    issued = retain_until - dt.timedelta(days=3650)
    return {
        "_id": doc_id,
        "type": TYPES[n % 3],
        "source": "bench",
        "source_ref": f"bench-{doc_id}",
        "source_key": source_key("bench", f"bench-{doc_id}"),
        "account_id": account_id,
        "title": f"Document {n}",
        "attributes": {"invoice_number": f"INV-{n:08d}"},
        "summary": {},
        "issued_at": issued,
        "created_at": issued,
        "blob": {
            "key": f"documents/{doc_id[:2]}/{doc_id}",
            "size": len(BLOB),
            "sha256": "0" * 64,
            "content_type": "application/pdf",
            "filename": f"{n}.pdf",
        },
        "delivery": {"mode": "digital", "reason": None, "email": None, "locale": "en"},
        "origin": "backfill",
        "read_at": None,
        "archived_at": None,
        "first_downloaded_at": None,
        "notifications": {},
        "hold": None,
        "retain_until": retain_until,
    }


def put_blobs(services: Services, docs: list[Doc]) -> None:
    """One small blob per document, recording its version as the ingest does."""
    client, bucket = services.blobs.client, services.blobs.bucket

    def put(doc: Doc) -> None:
        result = client.put_object(
            bucket, doc["blob"]["key"], io.BytesIO(BLOB), len(BLOB), "application/pdf"
        )
        if result.version_id:
            doc["blob"]["version_id"] = result.version_id

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, docs))


def empty_bucket(services: Services) -> None:
    client, bucket = services.blobs.client, services.blobs.bucket
    if not client.bucket_exists(bucket):
        return
    versions = [
        DeleteObject(o.object_name or "", o.version_id)
        for o in client.list_objects(bucket, recursive=True, include_version=True)
    ]
    for start in range(0, len(versions), 1000):
        errors = list(
            client.remove_objects(
                bucket, versions[start : start + 1000], bypass_governance_mode=True
            )
        )
        if errors:
            raise SystemExit(f"cannot empty {bucket}: {errors[0]}")


async def seed(services: Services, count: int, accounts: int, probe_docs: int) -> float:
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired_at = now - dt.timedelta(days=1)
    docs = [document(n, f"bench-acct-{n % accounts}", expired_at) for n in range(count)]
    docs += [document(n, PROBE, now + dt.timedelta(days=3000)) for n in range(probe_docs)]
    await asyncio.to_thread(put_blobs, services, docs)
    for start in range(0, len(docs), 5000):
        await services.database.documents.insert_many(docs[start : start + 5000], ordered=False)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for _ in range(150):
        if process.poll() is not None:
            raise SystemExit(f"serve exited early; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"serve did not start; see {log}")


async def read_page(http: httpx.AsyncClient, token: str) -> float:
    started = time.perf_counter()
    answer = await http.get(
        "/v1/mailbox/documents?limit=20", headers={"Authorization": f"Bearer {token}"}
    )
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"portal answered {answer.status_code}: {answer.text[:200]}")
    return elapsed


def row(name: str, samples: list[float]) -> str:
    return (
        f"  {name:<28} n={len(samples):>6,}  p50 {statistics.median(samples):7.2f} ms  "
        f"p99 {percentile(samples, 99):7.2f} ms  max {max(samples):7.2f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000, help="Expired documents to purge.")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--probe-docs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300, help="Baseline portal reads.")
    parser.add_argument("--batch", type=int, default=500, help="Purge page size.")
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    os.environ.update(
        {
            "MAILBOX_MONGO_DATABASE": DATABASE,
            "MAILBOX_S3_BUCKET": BUCKET,
            "MAILBOX_AUTH_JWT_SECRET": BENCH_SECRET,
            "MAILBOX_LOG_FORMAT": "json",
            "MAILBOX_RATE_PORTAL_PER_MINUTE": "0",
        }
    )
    settings = load_settings()
    services = Services.build(settings)
    await services.mongo.drop_database(DATABASE)
    await asyncio.to_thread(empty_bucket, services)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    locking = await services.blobs.object_lock_enabled()
    print(
        f"retention purge benchmark: {os.cpu_count()} cores, stack {stack.config.profile}, "
        f"{args.count:,} expired documents over {args.accounts:,} accounts, "
        f"bucket object locking {'on' if locking else 'OFF'}"
    )
    seconds = await seed(services, args.count, args.accounts, args.probe_docs)
    print(f"  seeded in {seconds:.1f} s ({args.count / seconds:,.0f} documents+blobs/s)")

    port = free_port()
    server = start_server(port)
    token = mint_token(settings.auth, "bench-user", [PROBE], ttl_s=7200)
    purge = RetentionPurge(
        services.database, services.blobs, services.registry, batch_size=args.batch
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            for _ in range(20):
                await read_page(http, token)
            baseline = [await read_page(http, token) for _ in range(args.requests)]

            during: list[float] = []
            done = asyncio.Event()

            async def reader() -> None:
                while not done.is_set():
                    during.append(await read_page(http, token))

            reading = asyncio.create_task(reader())
            report = await purge.run(dt.datetime.now(dt.UTC))
            done.set()
            await reading
    finally:
        server.terminate()
        server.wait(timeout=20)

    left = await services.database.documents.count_documents({})
    blobs_left = await asyncio.to_thread(
        lambda: sum(1 for _ in services.blobs.client.list_objects(BUCKET, recursive=True))
    )
    print(
        f"  purged {report.total:,} documents in {report.seconds:.1f} s "
        f"({report.total / report.seconds:,.0f}/s), page size {args.batch}, "
        f"blob deletes failed: {report.blobs_failed}"
    )
    print(f"  by type: {dict(sorted(report.purged.items()))}")
    print("  portal GET /v1/mailbox/documents (first page, 20 of the probe account):")
    print(row("baseline (nothing else)", baseline))
    print(row("during the purge", during))
    print(f"  left: {left} documents, {blobs_left} blobs (expected {args.probe_docs} each)")
    if left != args.probe_docs or blobs_left != args.probe_docs or report.total != args.count:
        raise SystemExit("MISMATCH: the purge did not remove exactly the expired documents")
    await services.mongo.drop_database(DATABASE)
    await asyncio.to_thread(empty_bucket, services)
    await services.close()


if __name__ == "__main__":
    asyncio.run(main())
