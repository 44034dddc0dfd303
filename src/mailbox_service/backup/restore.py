"""Restoring a snapshot: files first, then the metadata that points to them.

The caller (`cli/backup.py`) refuses an occupied database or bucket unless `--merge`. Then
`restore_snapshot`: the other collections, then documents a batch at a time (their files put
back under the keys they had, then the metadata; never metadata without its file), with S3
Object Lock retention and legal holds for write-once files, as ingestion and `hold set` would
have left them; then the migrations. With `--merge` what already exists (same `_id`, or the
same source reference) is kept and counted as skipped.

Indexes are built after the data, as `mongorestore` does: DocumentDB maintains the ten indexes
of `documents` row by row at about 3 ms per inserted document on our test machine, while
building them over the loaded collection takes a fraction of that (figures in
docs/operations.md). Into a database that was never migrated the data therefore goes first and
every migration runs after it (migrations must be safe to re-run on migrated data anyway: see
migrate.py); into a database that was migrated (or with `--merge`), the indexes exist already.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.error import S3Error
from minio.retention import Retention

from mailbox_service.backfill.progress import ProgressDisplay
from mailbox_service.backfill.report import Tally
from mailbox_service.backup.layout import Manifest, blob_name, blob_path, decode_line
from mailbox_service.backup.storage import Storage
from mailbox_service.backup.verify import iter_lines
from mailbox_service.clock import utcnow
from mailbox_service.migrate import Migrator
from mailbox_service.storage.blobs import PART_SIZE, BlobStore
from mailbox_service.storage.mongo import MIGRATIONS_COLLECTION, Doc
from mailbox_service.storage.snapshots import (
    existing_ids,
    has_records,
    held_account_ids,
    insert_new,
)

BATCH = 500


@dataclass
class RestoreResult:
    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blob_bytes: int = 0
    locked: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Step:
    """What every batch of one restore shares."""

    held_accounts: set[str]
    lock_on: bool
    now: dt.datetime
    result: RestoreResult
    tally: Tally


class Restorer:
    def __init__(
        self,
        storage: Storage,
        root: Path,
        snapshot: Path,
        manifest: Manifest,
        *,
        immutable_types: set[str],
        lock_mode: str = "GOVERNANCE",
        workers: int = 8,
        merge: bool = False,
        progress: Callable[[int], ProgressDisplay] | None = None,
    ) -> None:
        self.storage = storage
        # With --merge an insert can be refused (the same source reference exists), and a
        # file locked before that could not be removed again: lock after the insert instead.
        self.merge = merge
        self.lock_at_put = not merge
        self.root = root
        self.snapshot = snapshot
        self.manifest = manifest
        self.immutable_types = immutable_types
        self.lock_mode = COMPLIANCE if lock_mode == "COMPLIANCE" else GOVERNANCE
        self.workers = workers
        self._progress_for = progress

    def occupied(self) -> list[str]:
        """What already holds data: non-empty collections, a non-empty bucket."""
        found = [
            f"collection {name} is not empty"
            for name in self.storage.db.list_collection_names()
            if name != MIGRATIONS_COLLECTION
            and not name.startswith("system.")
            and has_records(self.storage.db, name)
        ]
        try:
            objects = self.storage.minio.list_objects(self.storage.bucket, recursive=True)
            if next(iter(objects), None) is not None:
                found.append(f"bucket {self.storage.bucket} is not empty")
        except S3Error as exc:
            if exc.code != "NoSuchBucket":
                raise
        return found

    def run(self) -> RestoreResult:
        result = RestoreResult()
        for name in sorted(self.manifest.files):
            if name != "documents":
                self._collection(name, result)
        if "documents" in self.manifest.files:
            self._documents(result)
        return result

    def _collection(self, name: str, result: RestoreResult) -> None:
        path = self.snapshot / self.manifest.files[name].file
        batch: list[Doc] = []
        inserted = skipped = 0
        for line in iter_lines(path):
            batch.append(decode_line(line))
            if len(batch) >= 1000:
                refused = insert_new(self.storage.db, name, batch)
                inserted, skipped = inserted + len(batch) - len(refused), skipped + len(refused)
                batch = []
        refused = insert_new(self.storage.db, name, batch)
        result.inserted[name] = inserted + len(batch) - len(refused)
        result.skipped[name] = skipped + len(refused)

    # ----------------------------------------------------------------------------- documents

    def _documents(self, result: RestoreResult) -> None:
        entry = self.manifest.files["documents"]
        tally = Tally()
        display = self._progress_for(entry.count) if self._progress_for else None
        if display:
            display.start()
        result.inserted["documents"] = result.skipped["documents"] = 0
        step = _Step(
            held_accounts=held_account_ids(self.storage.db),
            lock_on=self._bucket_locks(),
            now=utcnow(),
            result=result,
            tally=tally,
        )
        # Files of batch N+1 go up while batch N's metadata is inserted: the two wait on
        # different servers. A batch's metadata is still inserted only after all its files.
        pending: Future[None] | None = None
        try:
            with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as inserter:
                batch: list[Doc] = []
                for line in iter_lines(self.snapshot / entry.file):
                    batch.append(decode_line(line))
                    if len(batch) >= BATCH:
                        pending = self._batch(batch, pool, inserter, pending, step)
                        batch = []
                        if display:
                            display.update(tally)
                if batch:
                    pending = self._batch(batch, pool, inserter, pending, step)
                if pending is not None:
                    pending.result()
        finally:
            if display:
                display.stop(tally)

    def _batch(
        self,
        batch: list[Doc],
        pool: ThreadPoolExecutor,
        inserter: ThreadPoolExecutor,
        pending: Future[None] | None,
        step: _Step,
    ) -> Future[None]:
        existing: set[str] = set()
        if self.merge:  # otherwise the database was found empty before the restore began
            existing = existing_ids(self.storage.db, "documents", [doc["_id"] for doc in batch])
        fresh = [doc for doc in batch if doc["_id"] not in existing]
        puts = [(doc, pool.submit(self._put, doc, step)) for doc in fresh]
        ready: list[Doc] = []
        for doc, future in puts:
            problem = future.result()
            if problem:
                step.result.problems.append(problem)
                step.tally.failed += 1
            else:
                ready.append(doc)
        if pending is not None:
            pending.result()
        return inserter.submit(self._insert, ready, len(existing), pool, step)

    def _insert(
        self, ready: list[Doc], existing: int, pool: ThreadPoolExecutor, step: _Step
    ) -> None:
        result, tally = step.result, step.tally
        refused = insert_new(self.storage.db, "documents", ready)
        for doc in refused:
            # Same source reference as a document already here (--merge): keep theirs.
            result.problems.append(
                f"document {doc['_id']}: its source reference exists already; kept the other"
            )
            self.storage.minio.remove_object(self.storage.bucket, doc["blob"]["key"])
        refused_ids = {doc["_id"] for doc in refused}
        restored = [doc for doc in ready if doc["_id"] not in refused_ids]
        if step.lock_on and not self.lock_at_put:
            locks = [
                pool.submit(self._lock, doc, doc["account_id"] in step.held_accounts)
                for doc in restored
                if self._write_once(doc, step)
            ]
            result.locked += sum(1 for f in locks if f.result())
        elif step.lock_on:
            result.locked += sum(1 for doc in restored if self._write_once(doc, step))
        size = sum(int(doc["blob"]["size"]) for doc in restored)
        result.blobs += len(restored)
        result.blob_bytes += size
        tally.bytes += size
        result.inserted["documents"] += len(restored)
        result.skipped["documents"] += existing + len(refused)
        tally.imported += len(restored)
        tally.skipped += existing + len(refused)

    def _write_once(self, doc: Doc, step: _Step) -> bool:
        return doc["type"] in self.immutable_types and doc["retain_until"] > step.now

    def _put(self, doc: Doc, step: _Step) -> str | None:
        blob = doc.get("blob") or {}
        sha = str(blob.get("sha256"))
        path = blob_path(self.root, sha)
        if not path.exists():
            return f"document {doc['_id']}: missing file {blob_name(sha)}; not restored"
        size = path.stat().st_size
        retention, legal_hold = None, False
        if self.lock_at_put and step.lock_on and self._write_once(doc, step):
            # Locked in the same request: into an empty database no insert can be refused,
            # so no locked file can be left without its metadata (except by a crash, which
            # a rerun with --merge completes).
            retention = Retention(self.lock_mode, doc["retain_until"].astimezone(dt.UTC))
            legal_hold = bool(doc.get("hold")) or doc["account_id"] in step.held_accounts
        with path.open("rb") as f:
            written = self.storage.minio.put_object(
                self.storage.bucket,
                str(blob["key"]),
                f,
                size,
                content_type=str(blob.get("content_type") or "application/octet-stream"),
                part_size=PART_SIZE if size > PART_SIZE else 0,
                num_parallel_uploads=1,
                retention=retention,
                legal_hold=legal_hold,
            )
        # The purge deletes exactly the version ingestion recorded; in this bucket the file
        # has a new one (or none, unversioned). The metadata is inserted after this.
        if written.version_id:
            blob["version_id"] = written.version_id
        else:
            blob.pop("version_id", None)
        return None

    def _bucket_locks(self) -> bool:
        try:
            return self.storage.minio.get_object_lock_config(self.storage.bucket) is not None
        except S3Error as exc:
            if exc.code in {"ObjectLockConfigurationNotFoundError", "InvalidRequest"}:
                return False
            raise

    def _lock(self, doc: Doc, account_held: bool) -> bool:
        key = str(doc["blob"]["key"])
        until: dt.datetime = doc["retain_until"]
        retention = Retention(self.lock_mode, until.astimezone(dt.UTC))
        self.storage.minio.set_object_retention(self.storage.bucket, key, retention)
        if account_held or doc.get("hold"):
            self.storage.minio.enable_object_legal_hold(self.storage.bucket, key)
        return True


async def restore_snapshot(
    restorer: Restorer, migrator: Migrator, blobs: BlobStore
) -> RestoreResult:
    """Bucket, data, then every pending migration (which builds the indexes over the data)."""
    await blobs.ensure_bucket()
    result = await anyio.to_thread.run_sync(restorer.run)
    await migrator.apply_pending()
    return result
