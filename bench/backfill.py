"""Backfill throughput against a raw baseline, with memory sampled over the run.

    MAILBOX_BENCH_PROFILE=test9 uv run python bench/backfill.py [--count 20000]
        [--concurrency 8] [--size-kib 30] [--archive DIR] [--keep]

Generates (or reuses) a sample archive of `--count` invoices of about `--size-kib` KiB, then,
in the same run and at the same concurrency:
  * backfill: `run_backfill` over the manifest, i.e. the real ingest service (validation,
    hashing, sniffing, idempotency lookup, blob to MinIO, metadata to MongoDB);
  * raw baseline: the same files read and put to MinIO and the same metadata inserted with
    `insert_many`, without validation or lookups.
Both run twice over half the archive each, interleaved, so drift on a busy machine hits both.
The benchmark process's RSS is sampled every 0.2 s; its peak and its course are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec
import psutil
from minio.deleteobjects import DeleteObject
from pymongo import IndexModel

from mailbox_devtools.demo.archive import MANIFEST_NAME, ArchiveSpec, write_archive
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.backfill.manifest import ManifestLine, read_manifest
from mailbox_service.backfill.report import Summary
from mailbox_service.backfill.runner import BackfillOptions, run_backfill
from mailbox_service.log import configure_logging
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import load_settings
from mailbox_service.storage.documents import source_key
from mailbox_service.wiring.services import Services

MiB = 1024 * 1024
RAW_COLLECTION = "bench_raw_documents"
RAW_BATCH = 500
"""Documents per insert_many in the baseline: big enough to amortise the round trip."""
RAW_SOURCE = "bench-raw"
"""The baseline's source: its documents need the unique `source_key` like real ones."""


@dataclass
class MemorySampler:
    """RSS of this process every `interval` seconds, in a thread, while the benchmark runs."""

    interval: float = 0.2
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        process = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self.samples.append((time.monotonic(), process.memory_info().rss))
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def between(self, start: float, end: float) -> list[int]:
        return [rss for at, rss in self.samples if start <= at <= end]


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) so far of this process and of each server with its children:
    the difference over a phase shows who does the work per document."""

    def total(process: psutil.Process) -> float:
        seconds = 0.0
        for proc in [process, *process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            seconds += times.user + times.system
        return seconds

    figures = {"bench": total(psutil.Process())}
    for status in stack.status():
        if status.pid is not None and status.name in {"ferretdb", "postgres", "minio"}:
            try:
                figures[status.name] = total(psutil.Process(status.pid))
            except psutil.Error:
                continue
    return figures


@dataclass(frozen=True)
class Phase:
    name: str
    documents: int
    bytes: int
    elapsed: float
    started: float
    ended: float
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        return self.documents / self.elapsed

    @property
    def mib_per_s(self) -> float:
        return self.bytes / MiB / self.elapsed


def archive_for(args: argparse.Namespace) -> Path:
    """Reuse an archive generated with the same parameters; generating 20k PDFs takes a while."""
    root = (
        Path(args.archive)
        if args.archive
        else Path(tempfile.gettempdir())
        / (f"mailbox-bench-archive-{args.count}-{args.size_kib}k-s{args.seed}")
    )
    stamp = root / ".complete"
    if stamp.exists() and stamp.read_text() == f"{args.count} {args.size_kib} {args.seed}":
        return root
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    spec = ArchiveSpec(
        count=args.count,
        accounts=max(args.count // 20, 1),
        until=dt.date(2026, 1, 1),
        types=("invoice",),
        size_kib=args.size_kib,
        seed=args.seed,
        ref_prefix=f"bench-s{args.seed}",
    )
    result = write_archive(root, spec)
    stamp.write_text(f"{args.count} {args.size_kib} {args.seed}")
    print(
        f"  generated {result.count} PDFs ({result.bytes / MiB:.0f} MiB) in "
        f"{time.perf_counter() - started:.0f} s at {root}"
    )
    return root


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def halves(manifest: Path, count: int) -> list[tuple[int, int]]:
    middle = count // 2
    return [(0, middle), (middle, count)]


def slice_lines(manifest: Path, start: int, stop: int) -> Iterator[ManifestLine]:
    return itertools.islice(read_manifest(manifest), start, stop)


async def prepare_raw_collection(services: Services) -> None:
    """The baseline's collection gets the indexes `documents` has, so inserts cost the same."""
    raw = services.database.db[RAW_COLLECTION]
    await raw.drop()
    info = await services.database.documents.index_information()
    models = [
        IndexModel(spec["key"], name=name, unique=bool(spec.get("unique")))
        for name, spec in info.items()
        if name != "_id_"
    ]
    if models:
        await raw.create_indexes(models)


async def raw_baseline(
    services: Services, root: Path, lines: Iterator[ManifestLine], concurrency: int, run: str
) -> tuple[int, int]:
    """Read each file, put it to MinIO, insert the metadata in batches: no checks at all."""
    collection = services.database.db[RAW_COLLECTION]
    client, bucket = services.blobs.client, services.blobs.bucket
    batch: list[dict[str, Any]] = []
    documents = 0
    total_bytes = 0

    def put(key: str, path: Path) -> int:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            client.put_object(bucket, key, fh, size, content_type="application/pdf")
        return size

    async def flush(docs: list[dict[str, Any]]) -> None:
        if docs:
            await collection.insert_many(docs, ordered=False)

    async def worker() -> None:
        nonlocal batch, documents, total_bytes
        for line in iterator:
            assert line.document is not None
            meta = dict(line.document)
            relative = meta.pop("file")
            key = f"bench-raw/{run}/{meta['source_ref']}"
            size = await anyio.to_thread.run_sync(put, key, root / relative)
            unique_key = source_key(RAW_SOURCE, meta["source_ref"])
            batch.append(
                {"_id": key, **meta, "source_key": unique_key, "blob": {"key": key, "size": size}}
            )
            documents += 1
            total_bytes += size
            if len(batch) >= RAW_BATCH:
                full, batch = batch, []
                await flush(full)

    iterator = iter(lines)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await flush(batch)
    return documents, total_bytes


async def backfill(
    services: Services,
    root: Path,
    lines: Iterator[ManifestLine],
    concurrency: int,
    source: str,
    batch_size: int | None = None,
) -> Summary:
    options = BackfillOptions(
        manifest=root / MANIFEST_NAME,
        base_dir=root,
        max_bytes=services.settings.limits.max_upload_bytes,
        source=source,
        concurrency=concurrency,
        batch_size=batch_size,
    )
    summary = await run_backfill(services.ingest, options, lines=lines)
    if summary.failed or summary.imported != summary.documents:
        raise SystemExit(f"backfill did not import every line: {summary.to_dict()}")
    return summary


async def backfill_all(services: Services, root: Path, concurrency: int, source: str) -> Summary:
    """The whole manifest again, as an operator's rerun: every line must come back skipped."""
    options = BackfillOptions(
        manifest=root / MANIFEST_NAME,
        base_dir=root,
        max_bytes=services.settings.limits.max_upload_bytes,
        source=source,
        concurrency=concurrency,
    )
    summary = await run_backfill(services.ingest, options)
    if summary.skipped != summary.documents:
        raise SystemExit(f"rerun did not skip every line: {summary.to_dict()}")
    return summary


async def cleanup(services: Services, raw_run: str, source: str) -> None:
    await services.database.db[RAW_COLLECTION].drop()
    keys = [
        doc["blob"]["key"]
        async for doc in services.database.documents.find({"source": source}, {"blob.key": 1})
    ]
    await services.database.documents.delete_many({"source": source})

    def remove_all() -> None:
        client, bucket = services.blobs.client, services.blobs.bucket
        raw = (o.object_name for o in client.list_objects(bucket, f"bench-raw/{raw_run}/", True))
        everything = itertools.chain(raw, keys)
        while chunk := [DeleteObject(k) for k in itertools.islice(everything, 1000) if k]:
            for error in client.remove_objects(bucket, chunk):
                print(f"  cleanup: {error}")

    await anyio.to_thread.run_sync(remove_all)


def report(name: str, phases: list[Phase], sampler: MemorySampler) -> dict[str, float]:
    documents = sum(p.documents for p in phases)
    size = sum(p.bytes for p in phases)
    elapsed = sum(p.elapsed for p in phases)
    rss = [r for p in phases for r in sampler.between(p.started, p.ended)]
    row = {
        "docs_per_s": documents / elapsed,
        "mib_per_s": size / MiB / elapsed,
        "peak_rss_mib": max(rss, default=0) / MiB,
    }
    rounds = ", ".join(f"{p.docs_per_s:.0f}" for p in phases)
    cpu: dict[str, float] = {}
    for phase in phases:
        for process, seconds in phase.cpu.items():
            cpu[process] = cpu.get(process, 0.0) + seconds
    per_k = "  ".join(f"{process} {sec / documents * 1000:.1f}" for process, sec in cpu.items())
    print(
        f"  {name:<9} {documents:>6} docs {size / MiB:7.0f} MiB {elapsed:7.1f} s   "
        f"{row['docs_per_s']:7.1f} docs/s {row['mib_per_s']:6.2f} MiB/s   "
        f"peak RSS {row['peak_rss_mib']:.0f} MiB   (rounds: {rounds} docs/s)"
    )
    print(f"  {'':<9} CPU seconds per 1000 documents: {per_k}")
    for process, seconds in cpu.items():
        row[f"cpu_s_per_1000_{process}"] = seconds / documents * 1000
    return row


def rss_course(sampler: MemorySampler, phase: Phase) -> str:
    """RSS at 0, 25, 50, 75 and 100 % of a phase: flat means no growth with documents."""
    values = sampler.between(phase.started, phase.ended)
    if not values:
        return "no samples"
    points = [
        values[min(len(values) - 1, round(q * (len(values) - 1)))] for q in (0, 0.25, 0.5, 0.75, 1)
    ]
    return " → ".join(f"{v / MiB:.0f}" for v in points) + " MiB"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000, help="Invoices in the archive.")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size-kib", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=None, help="Backfill batch size.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--archive", help="Where to generate (or reuse) the archive.")
    parser.add_argument("--keep", action="store_true", help="Keep the imported documents.")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="Then run the backfill over the whole manifest again (all skipped): resume cost.",
    )
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    settings = load_settings()
    configure_logging("console")
    # As the CLI does: no log line per document, they would cost more than they tell.
    logging.getLogger("mailbox_service.ingestion.service").setLevel(logging.WARNING)
    services = Services.build(settings)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    print(
        f"backfill benchmark: {args.count} invoices x {args.size_kib} KiB, concurrency "
        f"{args.concurrency}, {os.cpu_count()} cores, profile {stack.config.profile}"
    )
    root = archive_for(args).resolve()
    manifest = root / MANIFEST_NAME
    run = uuid.uuid4().hex[:8]
    source = f"bench-{run}"
    await prepare_raw_collection(services)
    sampler = MemorySampler()
    sampler.start()
    phases: dict[str, list[Phase]] = {"backfill": [], "raw": []}
    try:
        for start, stop in halves(manifest, args.count):
            cpu, began = cpu_seconds(stack), time.monotonic()
            documents, size = await raw_baseline(
                services, root, slice_lines(manifest, start, stop), args.concurrency, run
            )
            ended = time.monotonic()
            used = delta(cpu, cpu_seconds(stack))
            phases["raw"].append(Phase("raw", documents, size, ended - began, began, ended, used))
            cpu, began = cpu_seconds(stack), time.monotonic()
            summary = await backfill(
                services,
                root,
                slice_lines(manifest, start, stop),
                args.concurrency,
                source,
                args.batch_size,
            )
            ended = time.monotonic()
            used = delta(cpu, cpu_seconds(stack))
            phases["backfill"].append(
                Phase(
                    "backfill", summary.imported, summary.bytes, ended - began, began, ended, used
                )
            )
        sampler.stop()
        print("results (same run, same concurrency):")
        ours = report("backfill", phases["backfill"], sampler)
        raw = report("raw", phases["raw"], sampler)
        ratio = ours["docs_per_s"] / raw["docs_per_s"]
        print(f"  ratio backfill/raw: {ratio:.2f} (target >= 0.85)")
        for phase in phases["backfill"]:
            print(f"  backfill RSS over {phase.documents} docs: {rss_course(sampler, phase)}")
        all_rss = [rss for _, rss in sampler.samples]
        print(
            f"  process peak RSS over the whole run: {max(all_rss) / MiB:.0f} MiB, "
            f"median {statistics.median(all_rss) / MiB:.0f} MiB, {len(all_rss)} samples"
        )
        figures: dict[str, Any] = {"backfill": ours, "raw": raw, "ratio": ratio}
        if args.rerun:
            began = time.monotonic()
            again = await backfill_all(services, root, args.concurrency, source)
            elapsed = time.monotonic() - began
            print(
                f"  rerun     {again.skipped:>6} skipped in {elapsed:.1f} s, "
                f"{again.skipped / elapsed:.1f} docs/s (every line verified, nothing written)"
            )
            figures["rerun_docs_per_s"] = again.skipped / elapsed
        print(msgspec.json.encode(figures).decode())
    finally:
        sampler.stop()
        if not args.keep:
            await cleanup(services, run, source)
        await services.close()
        if os.environ.get("MAILBOX_BENCH_KEEP_STACK") != "1":
            stack.down()


if __name__ == "__main__":
    asyncio.run(main())
