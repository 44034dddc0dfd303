"""Backup and restore throughput against a raw copy of the same files, in one process.

    MAILBOX_BENCH_PROFILE=test2 uv run python bench/backup.py [--count 2000] [--size-kib 30]
        [--workers 8] [--rounds 2]

Seeds `--count` invoice documents (metadata as ingestion stores it, a file of about
`--size-kib` KiB each) into a database and bucket of their own, then, at the same number of
worker threads, and alternating so drift on a busy machine hits both sides alike:
  * raw copy out: every file `get_object` -> a local file, nothing else;
  * backup: `BackupWriter.run` (metadata read in `_id` order, files copied and hashed, each
    batch's lines written after its files, the other collections, the manifest);
  * raw copy in: those local files `put_object` into an empty bucket (made like the service's:
    with object locking);
  * restore: what `mailbox-service restore` does into a database never migrated and an empty
    bucket: files, then metadata with `insert_many` (invoices' files locked with S3 retention
    in the same request), then the migrations, which build the indexes over the data.
Prints documents/s and MiB/s of each and the ratios backup/raw and restore/raw (best round).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import io
import os
import shutil
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from minio.commonconfig import GOVERNANCE
from minio.retention import Retention

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.backup.create import BackupWriter
from mailbox_service.backup.layout import read_manifest, snapshot_dir
from mailbox_service.backup.restore import Restorer, restore_snapshot
from mailbox_service.backup.storage import Storage
from mailbox_service.doctypes import load_registry
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings, load_settings
from mailbox_service.storage.documents import blob_key, new_document_id, source_key
from mailbox_service.wiring.services import Services

MIB = 1024 * 1024


def with_storage(settings: Settings, name: str) -> Settings:
    return msgspec.structs.replace(
        settings,
        mongo=msgspec.structs.replace(settings.mongo, database=name.replace("-", "_")),
        s3=msgspec.structs.replace(settings.s3, bucket=name),
    )


async def migrate(settings: Settings) -> None:
    services = Services.build(settings)
    try:
        await migrator(settings, services).apply_pending()
    finally:
        await services.close()


def migrator(settings: Settings, services: Services) -> Migrator:
    return Migrator(MigrationContext(settings, services.database, services.blobs), migrations_dir())


async def restore(target: Settings, restorer: Restorer) -> int:
    """What `mailbox-service restore` does: bucket, data, then the migrations (indexes)."""
    services = Services.build(target)
    try:
        result = await restore_snapshot(restorer, migrator(target, services), services.blobs)
    finally:
        await services.close()
    return result.blob_bytes


def invoice(account: str, data: bytes, now: dt.datetime, kind: str) -> dict[str, Any]:
    doc_id = new_document_id()
    ref = f"bench-{doc_id[:12]}"
    return {
        "_id": doc_id,
        "type": kind,
        "source": "bench",
        "source_ref": ref,
        "source_key": source_key("bench", ref),
        "account_id": account,
        "title": f"Invoice {ref}",
        "attributes": {
            "invoice_number": ref,
            "total_amount": "84.20",
            "currency": "EUR",
            "due_date": "2026-12-15",
        },
        "summary": {"invoice_number": ref, "total_amount": "84.20", "currency": "EUR"},
        "issued_at": now,
        "created_at": now,
        "blob": {
            "key": blob_key(doc_id),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": "application/pdf",
            "filename": f"{ref}.pdf",
        },
        "delivery": "digital",
        "origin": "api",
        "read_at": None,
        "archived_at": None,
        "notifications": {"email": {"status": "sent", "attempts": 1, "error": None, "at": now}},
        "retain_until": now + dt.timedelta(days=3653),
    }


def seed(storage: Storage, count: int, size: int, workers: int, kind: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    docs: list[dict[str, Any]] = []
    payloads: list[bytes] = []
    for i in range(count):
        data = os.urandom(size)
        docs.append(invoice(f"acct-{i % 200:04d}", data, now, kind))
        payloads.append(data)

    def put(i: int) -> None:

        storage.minio.put_object(
            storage.bucket,
            docs[i]["blob"]["key"],
            io.BytesIO(payloads[i]),
            size,
            content_type="application/pdf",
        )

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, range(count)))
    for start in range(0, count, 1000):
        storage.db["documents"].insert_many(docs[start : start + 1000])
    storage.db["accounts"].insert_many(
        [
            {"_id": f"acct-{i:04d}", "email": f"a{i}@example.org", "paperless": True}
            for i in range(200)
        ]
    )
    return docs


def raw_out(storage: Storage, keys: list[str], target: Path, workers: int) -> int:
    def get(key: str) -> int:
        response: Any = storage.minio.get_object(storage.bucket, key)
        path = target / key.replace("/", "_")
        size = 0
        try:
            with path.open("wb") as f:
                for chunk in response.stream(1024 * 1024):
                    f.write(chunk)
                    size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        return size

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(get, keys))


def raw_in(
    storage: Storage, keys: list[str], source: Path, workers: int, until: dt.datetime | None
) -> int:
    """Put the files back; with `until`, locked as write-once files are (one request each)."""
    retention = Retention(GOVERNANCE, until) if until else None

    def put(key: str) -> int:
        path = source / key.replace("/", "_")
        size = path.stat().st_size
        with path.open("rb") as f:
            storage.minio.put_object(
                storage.bucket, key, f, size, content_type="application/pdf", retention=retention
            )
        return size

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(put, keys))


def timed(label: str, count: int, fn: Any) -> float:
    began = time.perf_counter()
    nbytes = fn()
    took = time.perf_counter() - began
    rate = f"{count / took:8.1f} docs/s  {nbytes / MIB / took:7.1f} MiB/s"
    print(f"  {label:<11} {took:6.2f} s  {rate}", flush=True)
    return took


@dataclass
class Round:
    base: Settings
    source: Storage
    work: Path
    name: str
    keys: list[str]
    until: dt.datetime | None
    immutable: set[str]
    args: argparse.Namespace


def one_round(r: Round, created: list[Settings]) -> dict[str, float]:
    """Raw copy out, backup, raw copy in (plain, then locked), restore: seconds of each."""
    count, workers = r.args.count, r.args.workers
    times: dict[str, float] = {}
    raw_dir = r.work / f"raw-{r.name}"
    raw_dir.mkdir()
    backup_dir = r.work / f"backup-{r.name}"
    times["raw out"] = timed("raw out", count, lambda: raw_out(r.source, r.keys, raw_dir, workers))

    def backup() -> int:
        return BackupWriter(r.source, backup_dir, workers=workers).run().blobs.copied_bytes

    times["backup"] = timed("backup", count, backup)

    raw_target = with_storage(r.base, f"bench-raw-{r.name}")
    created.append(raw_target)
    asyncio.run(migrate(raw_target))  # a bucket made like the service's (locking on)
    raw = Storage.open(raw_target)
    times["raw in"] = timed("raw in", count, lambda: raw_in(raw, r.keys, raw_dir, workers, None))
    if r.until is not None:
        locked_keys = [f"locked/{key}" for key in r.keys]
        for key in r.keys:
            link = raw_dir / f"locked/{key}".replace("/", "_")
            link.symlink_to(raw_dir / key.replace("/", "_"))
        times["raw in+lock"] = timed(
            "raw in+lock", count, lambda: raw_in(raw, locked_keys, raw_dir, workers, r.until)
        )
    raw.close()

    target = with_storage(r.base, f"bench-restore-{r.name}")
    created.append(target)
    chosen = snapshot_dir(backup_dir, None)
    manifest = read_manifest(chosen)
    storage = Storage.open(target)
    restorer = Restorer(
        storage, backup_dir, chosen, manifest, immutable_types=r.immutable, workers=workers
    )
    times["restore"] = timed("restore", count, lambda: asyncio.run(restore(target, restorer)))
    storage.close()
    shutil.rmtree(raw_dir)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size-kib", type=int, default=30)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--type",
        default="invoice",
        help="Document type: invoice (write-once, restore locks each file) or "
        "shipment_document (no lock)",
    )
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    base = load_settings()
    run_id = uuid.uuid4().hex[:8]
    source_settings = with_storage(base, f"bench-backup-{run_id}")
    asyncio.run(migrate(source_settings))
    source = Storage.open(source_settings)
    registry = load_registry()
    immutable = {t.name for t in registry if t.immutable_files}
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    print(
        f"backup bench: {args.count} documents of {args.size_kib} KiB, {args.workers} workers, "
        f"{os.cpu_count()} cores, profile {stack.config.profile}",
        flush=True,
    )
    docs = seed(source, args.count, args.size_kib * 1024, args.workers, args.type)
    locked = args.type in immutable
    until = docs[0]["retain_until"] if locked else None
    keys = [d["blob"]["key"] for d in docs]
    times: dict[str, list[float]] = {"raw out": [], "backup": [], "raw in": [], "restore": []}
    if locked:
        times["raw in+lock"] = []
    created: list[Settings] = []
    try:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}", flush=True)
            for name, took in one_round(
                Round(base, source, work, f"{run_id}-{round_no}", keys, until, immutable, args),
                created,
            ).items():
                times[name].append(took)
    finally:
        for settings in (source_settings, *created):
            source.client.drop_database(settings.mongo.database)
        source.close()
        shutil.rmtree(work, ignore_errors=True)
    best = {name: min(values) for name, values in times.items()}

    def ratios(raw: str, ours: str) -> str:
        per_round = [r / o for r, o in zip(times[raw], times[ours], strict=True)]
        rounds = " ".join(f"{x:.2f}" for x in per_round)
        return (
            f"{best[raw] / best[ours]:.2f}x best to best, median of rounds "
            f"{statistics.median(per_round):.2f}x ({rounds})"
        )

    print(f"backup vs raw copy out: {ratios('raw out', 'backup')}")
    print(f"restore vs raw copy in: {ratios('raw in', 'restore')}")
    if locked:
        print(
            f"restore vs raw copy in with the same S3 retention ({args.type} files are "
            f"write-once): {ratios('raw in+lock', 'restore')}"
        )


if __name__ == "__main__":
    main()
