r"""Insert rate as `documents` grows: (source, source_ref) unique by a compound index or one key.

    uv run python bench/unique_key.py                 # 20,000 and 50,000 both, 200,000 single
    uv run python bench/unique_key.py --sizes 20000 --variants single   # a quick look

The two ways to make (source, source_ref) unique, on the stack's engine (profile test9, or
MAILBOX_BENCH_PROFILE), each in its own collection of database `bench_unique`:
  * compound: a unique index on (source, source_ref), what migrations 0001-0003 built;
  * single:   a unique index on `source_key` = "<source>\x1f<source_ref>" (migration 0004).
Both collections also carry the portal's list indexes (migration 0002), so only the uniqueness
differs (the figures in docs/architecture.md were measured while `blob_key` still existed).
For each size, ascending, each collection is filled to that size with bulk inserts while its
unique index is dropped, the unique index is built again (timed: what a migration on a
collection of that size pays), and then measured:
  * insert_many: --probe new documents in batches of 500 (ordered=False), one batch in flight;
  * insert_one: --singles documents one after another, p50/p99;
  * a replay of a stored pair is refused with E11000 (the idempotency rule still holds);
  * find_one of a pair by its unique key, p50.
The compound index is measured only up to --compound-up-to documents (50,000): on DocumentDB
its build time grows with the square of the collection (242-465 s at 50,000 here; the shared
vendor/README.md measured 733 s at 200,000 on an idle machine), so beyond that its collection
is only filled. At the largest size, migration 0004's steps then run on the compound
collection (drop the compound index if built, add the key to every document in bulk writes of
25,000, build the single unique index).

The database is dropped at the end (--keep-data keeps it). Expect 30-45 minutes on DocumentDB
with the defaults on 2 cores: the compound index at 50,000, the fills and the migration's
200,000 updates take most of it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib.util
import os
import random
import statistics
import time
import uuid
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.paths import migrations_dir
from mailbox_service.storage.documents import SOURCE_KEY_INDEX, source_key
from mailbox_service.storage.mongo import CODEC_OPTIONS, Doc

DATABASE = "bench_unique"
SOURCE = "bench"
FILL_BATCH = 5_000
PROBE_BATCH = 500
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

COMPOUND_INDEX = IndexModel(
    [("source", ASCENDING), ("source_ref", ASCENDING)], unique=True, name="source_ref_unique"
)
UNIQUE = {"compound": COMPOUND_INDEX, "single": SOURCE_KEY_INDEX}


def migration(name: str) -> Any:
    """A migration module from migrations/ (they are files, not a package)."""
    path = next(migrations_dir().glob(f"{name}_*.py"))
    spec = importlib.util.spec_from_file_location(f"bench_migration_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def secondary_indexes() -> list[IndexModel]:
    """The other indexes of `documents`: the portal's (0002; `blob_key` went in 0006)."""
    return list(migration("0002").MAILBOX_INDEXES)


class Documents:
    """Documents shaped like stored ones (about 1 KiB), with a unique source_ref each."""

    def __init__(self, *, with_key: bool, seed: int = 7) -> None:
        self.with_key = with_key
        self.random = random.Random(seed)
        self.run = uuid.uuid4().hex[:6]
        self.n = 0

    def one(self) -> Doc:
        r, n = self.random, self.n
        self.n += 1
        doc_id = uuid.uuid4().hex
        ref = f"{self.run}-{n:09d}"
        issued = EPOCH + dt.timedelta(seconds=r.randrange(5 * 365 * 86400))
        doc: Doc = {
            "_id": doc_id,
            "type": "invoice",
            "source": SOURCE,
            "source_ref": ref,
            "account_id": f"acct-{r.randrange(10_000):05d}",
            "title": f"Invoice INV-{n:09d}",
            "attributes": {
                "invoice_number": f"INV-{n:09d}",
                "total_amount": "84.20",
                "currency": "EUR",
                "due_date": "2026-12-15",
            },
            "summary": {"invoice_number": f"INV-{n:09d}", "total_amount": "84.20"},
            "issued_at": issued,
            "created_at": issued,
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
            "read_at": None if r.random() < 0.4 else issued,
            "archived_at": issued if r.random() < 0.1 else None,
            "first_downloaded_at": None,
            "notifications": {
                "email": {"status": "sent", "attempts": 1, "error": None, "at": issued},
                "realtime": {"status": "sent", "attempts": 1, "error": None, "at": issued},
            },
            "retain_until": issued + dt.timedelta(days=3650),
        }
        if self.with_key:
            doc["source_key"] = source_key(SOURCE, ref)
        return doc

    def many(self, count: int) -> list[Doc]:
        return [self.one() for _ in range(count)]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


async def fill(collection: AsyncCollection[Doc], docs: Documents, size: int) -> float:
    """Bulk-insert until the collection holds `size` documents; seconds taken."""
    have = await collection.count_documents({})
    started = time.perf_counter()
    while have < size:
        batch = docs.many(min(FILL_BATCH, size - have))
        await collection.insert_many(batch, ordered=False)
        have += len(batch)
    return time.perf_counter() - started


async def measure(
    collection: AsyncCollection[Doc], variant: str, docs: Documents, probe: int, singles: int
) -> dict[str, float]:
    started = time.perf_counter()
    for _ in range(probe // PROBE_BATCH):
        await collection.insert_many(docs.many(PROBE_BATCH), ordered=False)
    bulk_rate = (probe // PROBE_BATCH * PROBE_BATCH) / (time.perf_counter() - started)

    latencies = []
    stored: list[Doc] = []
    for _ in range(singles):
        doc = docs.one()
        t0 = time.perf_counter()
        await collection.insert_one(doc)
        latencies.append(time.perf_counter() - t0)
        stored.append(doc)

    replay = {**stored[0], "_id": uuid.uuid4().hex}
    try:
        await collection.insert_one(replay)
    except DuplicateKeyError:
        pass
    else:
        raise SystemExit(f"{variant}: a replayed (source, source_ref) was stored twice")

    lookups = []
    for doc in stored[:200]:
        query = (
            {"source_key": doc["source_key"]}
            if variant == "single"
            else {"source": doc["source"], "source_ref": doc["source_ref"]}
        )
        t0 = time.perf_counter()
        found = await collection.find_one(query, {"_id": 1})
        lookups.append(time.perf_counter() - t0)
        assert found is not None
        assert found["_id"] == doc["_id"]
    return {
        "bulk_per_s": bulk_rate,
        "one_per_s": len(latencies) / sum(latencies),
        "one_p50_ms": statistics.median(latencies) * 1000,
        "one_p99_ms": percentile(latencies, 99) * 1000,
        "lookup_p50_ms": statistics.median(lookups) * 1000,
    }


async def at_size(
    collection: AsyncCollection[Doc],
    variant: str,
    docs: Documents,
    size: int,
    probe: int,
    singles: int,
) -> dict[str, float]:
    index = UNIQUE[variant]
    name = index.document["name"]
    if name in await collection.index_information():
        await collection.drop_index(name)
    filled = await fill(collection, docs, size)
    started = time.perf_counter()
    await collection.create_indexes([index])
    build = time.perf_counter() - started
    row: dict[str, float] = {"size": float(size), "fill_s": filled, "build_s": build}
    row |= await measure(collection, variant, docs, probe, singles)
    print(
        f"  {variant:<8} {size:>9,}  build {build:7.1f} s   insert_many {row['bulk_per_s']:8,.0f}/s"
        f"   insert_one {row['one_per_s']:7,.0f}/s (p50 {row['one_p50_ms']:6.2f} ms, p99 "
        f"{row['one_p99_ms']:7.2f} ms)   find_one p50 {row['lookup_p50_ms']:5.2f} ms",
        flush=True,
    )
    return row


async def migrate_compound(collection: AsyncCollection[Doc]) -> None:
    """Migration 0004's steps on the compound collection, timed step by step."""
    step = migration("0004")
    count = await collection.count_documents({})
    t0 = time.perf_counter()
    if COMPOUND_INDEX.document["name"] in await collection.index_information():
        await collection.drop_index(COMPOUND_INDEX.document["name"])
    t1 = time.perf_counter()
    updated = await step.add_source_keys(collection)
    t2 = time.perf_counter()
    await collection.create_indexes([SOURCE_KEY_INDEX])
    t3 = time.perf_counter()
    print(
        f"  migration 0004 at {count:,}: drop compound {t1 - t0:.1f} s, keys for {updated:,} "
        f"documents {t2 - t1:.1f} s ({updated / (t2 - t1):,.0f}/s), unique index {t3 - t2:.1f} s",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,50000,200000")
    parser.add_argument(
        "--compound-up-to",
        type=int,
        default=50_000,
        help="Largest size at which the compound unique index is built and measured.",
    )
    parser.add_argument("--variants", default="single,compound")
    parser.add_argument("--probe", type=int, default=2_000, help="Documents per insert_many run.")
    parser.add_argument("--singles", type=int, default=300, help="Sequential insert_one calls.")
    parser.add_argument("--no-migration", action="store_true", help="Skip timing migration 0004.")
    parser.add_argument("--keep-data", action="store_true", help=f"Keep database {DATABASE}.")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    variants = [v.strip() for v in args.variants.split(",")]
    if unknown := set(variants) - set(UNIQUE):
        raise SystemExit(f"--variants: unknown {sorted(unknown)}; known: {sorted(UNIQUE)}")

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(stack.env()["MAILBOX_MONGO_URL"])
    db = client.get_database(DATABASE, codec_options=CODEC_OPTIONS)
    await client.drop_database(DATABASE)
    info = await db.command("buildInfo")
    engine = (
        f"FerretDB {info['ferretdb']['version']}" if "ferretdb" in info else "MongoDB"
    ) + f" (reports {info['version']})"
    print(
        f"unique-key benchmark: {engine}, {os.cpu_count()} cores, stack {stack.config.profile}, "
        f"sizes {', '.join(f'{s:,}' for s in sizes)}; probe {args.probe:,} bulk + "
        f"{args.singles} single inserts",
        flush=True,
    )
    try:
        collections = {}
        for variant in variants:
            collections[variant] = db[f"documents_{variant}"]
            await collections[variant].create_indexes(secondary_indexes())
        makers = {
            variant: Documents(with_key=variant == "single", seed=i)
            for i, variant in enumerate(variants)
        }
        rows: list[dict[str, Any]] = []
        for size in sizes:
            print(f"\n{size:,} documents:", flush=True)
            for variant in variants:
                if variant == "compound" and size > args.compound_up_to:
                    print(f"  compound {size:>9,}  not built (--compound-up-to)", flush=True)
                    continue
                row = await at_size(
                    collections[variant], variant, makers[variant], size, args.probe, args.singles
                )
                rows.append({"variant": variant, **row})
        if "compound" in variants and not args.no_migration:
            compound = collections["compound"]
            name = COMPOUND_INDEX.document["name"]
            if await compound.count_documents({}) < sizes[-1]:
                # Filling past --compound-up-to with the index in place would take hours;
                # dropping it is the migration's first step anyway.
                if name in await compound.index_information():
                    await compound.drop_index(name)
                await fill(compound, makers["compound"], sizes[-1])
            await migrate_compound(compound)
        print("\n| variant | documents | unique index build (s) | insert_many docs/s |", end="")
        print(" insert_one docs/s | insert_one p50 / p99 (ms) |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['variant']} | {int(row['size']):,} | {row['build_s']:.1f} | "
                f"{row['bulk_per_s']:,.0f} | {row['one_per_s']:,.0f} | "
                f"{row['one_p50_ms']:.2f} / {row['one_p99_ms']:.2f} |"
            )
    finally:
        if not args.keep_data:
            await client.drop_database(DATABASE)
        await client.close()
        if os.environ.get("MAILBOX_BENCH_KEEP_STACK") != "1":
            stack.down()


if __name__ == "__main__":
    asyncio.run(main())
