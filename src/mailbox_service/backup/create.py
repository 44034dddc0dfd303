"""Taking a backup: consistent without snapshots or transactions, incremental in files.

Neither engine we run on gives us a point-in-time read across collections (DocumentDB has no
snapshots, no multi-document transactions), so consistency comes from the order of the work
and from the service's own write order (blob first, then metadata):

- `documents` is read in `_id` order, a batch at a time; each batch's files are copied *before*
  the batch's lines are written. Every document in the snapshot therefore has its file in the
  backup. A document added after its place in the scan was passed is simply not in this
  snapshot (the next one has it); its blob was not needed.
- A file that vanished between the metadata read and the copy belongs to a document that was
  purged or erased meanwhile: the document is looked up again and, when it is gone, left out.
  If it is still there, the file is missing from the bucket: a problem, named in the manifest.
- A file whose SHA-256 differs from the one recorded at ingestion is not copied; it is named
  as a problem (somebody altered it in the bucket).
- The audit chain is copied entries first, then the per-day heads; a head that moved on while
  the entries were read is set back to the last copied entry, so the copied chain verifies.
- The other collections are copied whole, one after another; each document is read atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio.error import S3Error

from mailbox_service.backfill.progress import ProgressDisplay
from mailbox_service.backfill.report import Tally
from mailbox_service.backup.layout import (
    CHUNK,
    FORMAT,
    PARTIAL,
    SNAPSHOT_DIR,
    BackupError,
    BlobTotals,
    CollectionFile,
    Manifest,
    blob_path,
    encode_line,
    file_sha256,
    snapshot_id,
    write_manifest,
)
from mailbox_service.backup.storage import Storage
from mailbox_service.clock import utcnow
from mailbox_service.errors import ServiceError
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.snapshots import estimated_count, has_id, records

BATCH = 500
COMPRESSION = 1
"""gzip level of the metadata files: level 6 took as long as copying the files beside it on
two busy cores (profile of `bench/backup.py`); level 1 costs a few percent more bytes."""
"""Documents read, and their files copied, per step: enough to keep every worker busy."""


class AlteredBlob(ServiceError):
    """A file's bytes no longer match the sha256 stored with its document; `actual` is theirs."""

    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


@dataclass
class _Run:
    tally: Tally = field(default_factory=Tally)
    problems: list[str] = field(default_factory=list)
    referenced: dict[str, int] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    queued: set[str] = field(default_factory=set)
    """Files whose copy is under way (a file shared with the batch ahead is copied once)."""
    copied: int = 0
    copied_bytes: int = 0


@dataclass
class _Batch:
    documents: list[Doc]
    jobs: dict[str, tuple[Future[int], Doc]]


class BackupWriter:
    def __init__(
        self,
        storage: Storage,
        root: Path,
        *,
        workers: int = 8,
        progress: Callable[[int], ProgressDisplay] | None = None,
    ) -> None:
        self.storage = storage
        self.root = root
        self.workers = workers
        self._progress_for = progress

    def run(self) -> Manifest:
        started = utcnow()
        sid = snapshot_id(started)
        final = self.root / SNAPSHOT_DIR / sid
        if final.exists():
            raise BackupError(f"snapshot {final} already exists; start the next backup later")
        work = self.root / SNAPSHOT_DIR / f"{sid}{PARTIAL}"
        work.mkdir(parents=True, exist_ok=True)
        migrations = self.storage.applied_migrations()
        run = _Run()
        files: dict[str, CollectionFile] = {}
        names = self.storage.data_collections()
        total = estimated_count(self.storage.db, "documents")
        progress = self._progress_for(total) if self._progress_for else None
        if progress:
            progress.start()
        try:
            files["documents"] = self._documents(work, run, progress)
        finally:
            if progress:
                progress.stop(run.tally)
        chain_ends: dict[str, tuple[int, str]] = {}
        for name in names:
            if name == "documents":
                continue
            files[name] = self._collection(work, name, chain_ends)
        manifest = Manifest(
            format=FORMAT,
            snapshot=sid,
            started_at=started,
            finished_at=utcnow(),
            database=self.storage.db.name,
            bucket=self.storage.bucket,
            migrations=migrations,
            files=files,
            blobs=BlobTotals(
                referenced=len(run.referenced),
                bytes=sum(run.referenced.values()),
                copied=run.copied,
                copied_bytes=run.copied_bytes,
            ),
            problems=run.problems,
        )
        write_manifest(work, manifest)
        work.rename(final)
        return manifest

    # ----------------------------------------------------------------------------- documents

    def _documents(self, work: Path, run: _Run, progress: ProgressDisplay | None) -> CollectionFile:
        path = work / "documents.jsonl.gz"
        count = 0
        cursor = records(self.storage.db, "documents")
        with (
            gzip.open(path, "wb", compresslevel=COMPRESSION) as out,
            ThreadPoolExecutor(self.workers) as pool,
        ):
            # One batch ahead: while batch N's files are still being copied, batch N+1 is read
            # and its copies queued, so the database read and the copies overlap. Lines are
            # still written only after their own batch's files are in.
            batch: list[Doc] = []
            ahead: _Batch | None = None
            for doc in cursor:
                batch.append(doc)
                if len(batch) >= BATCH:
                    queued = self._queue(batch, pool, run)
                    if ahead is not None:
                        count += self._finish(ahead, out, run)
                    ahead, batch = queued, []
                    if progress:
                        progress.update(run.tally)
            last = self._queue(batch, pool, run) if batch else None
            for pending in (ahead, last):
                if pending is not None:
                    count += self._finish(pending, out, run)
        return CollectionFile(path.name, count, file_sha256(path), path.stat().st_size)

    def _queue(self, batch: list[Doc], pool: ThreadPoolExecutor, run: _Run) -> _Batch:
        jobs: dict[str, tuple[Future[int], Doc]] = {}
        for doc in batch:
            blob = doc.get("blob") or {}
            sha, key = blob.get("sha256"), blob.get("key")
            if not sha or not key:
                continue
            run.referenced[sha] = int(blob.get("size") or 0)
            if sha in run.present or sha in jobs or sha in run.queued:
                continue
            if blob_path(self.root, sha).exists():
                run.present.add(sha)
                continue
            jobs[sha] = (pool.submit(self._copy, key, sha), doc)
            run.queued.add(sha)
        return _Batch(batch, jobs)

    def _finish(self, queued: _Batch, out: gzip.GzipFile, run: _Run) -> int:
        batch, jobs = queued.documents, queued.jobs
        left_out: set[str] = set()
        failed: set[str] = set()
        copied_now: set[str] = set()
        for sha, (future, doc) in jobs.items():
            run.queued.discard(sha)
            try:
                size = future.result()
            except AlteredBlob as exc:
                run.problems.append(
                    f"document {doc['_id']}: file {doc['blob']['key']} has sha256 {exc.actual}, "
                    f"its metadata says {sha} (altered in the bucket; not copied)"
                )
                failed.add(doc["_id"])
                continue
            except S3Error as exc:
                if exc.code not in {"NoSuchKey", "NoSuchObject"}:
                    raise
                if not has_id(self.storage.db, "documents", doc["_id"]):
                    left_out.add(doc["_id"])  # purged or erased while we read: not needed
                else:
                    run.problems.append(
                        f"document {doc['_id']}: file {doc['blob']['key']} is missing in the bucket"
                    )
                    failed.add(doc["_id"])
                continue
            run.present.add(sha)
            run.copied += 1
            run.copied_bytes += size
            run.tally.bytes += size
            copied_now.add(doc["_id"])
        lines: list[bytes] = []
        for doc in batch:
            if doc["_id"] in left_out:
                run.referenced.pop((doc.get("blob") or {}).get("sha256", ""), None)
                continue
            lines.append(encode_line(doc))
            if doc["_id"] in failed:
                run.tally.failed += 1
            elif doc["_id"] in copied_now:
                run.tally.imported += 1
            else:
                run.tally.skipped += 1
        out.write(b"".join(lines))
        return len(lines)

    def _copy(self, key: str, sha: str) -> int:
        """Copy one file into DIR/blobs under its hash, checking the hash on the way."""
        final = blob_path(self.root, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        # A crash leaves a stray .tmp, never a file whose name lies about its content.
        tmp = final.with_name(f"{sha}.{uuid.uuid4().hex[:8]}.tmp")
        digest = hashlib.sha256()
        size = 0
        response: Any = self.storage.minio.get_object(self.storage.bucket, key)
        try:
            with tmp.open("wb") as f:
                for chunk in response.stream(CHUNK):
                    digest.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        if digest.hexdigest() != sha:
            tmp.unlink()
            raise AlteredBlob(digest.hexdigest())
        tmp.replace(final)
        return size

    # --------------------------------------------------------------------- other collections

    def _collection(
        self, work: Path, name: str, chain_ends: dict[str, tuple[int, str]]
    ) -> CollectionFile:
        path = work / f"{name}.jsonl.gz"
        count = 0
        cursor = records(self.storage.db, name)
        with gzip.open(path, "wb", compresslevel=COMPRESSION) as out:
            for doc in cursor:
                if name == "audit":
                    chain_ends[doc["day"]] = (int(doc["seq"]), str(doc["hash"]))
                elif name == "audit_heads":
                    end = chain_ends.get(doc["_id"])
                    if end is None:
                        continue  # a head whose entries were not written yet: a later backup
                    if int(doc["seq"]) > end[0]:
                        doc = {**doc, "seq": end[0], "hash": end[1]}
                out.write(encode_line(doc))
                count += 1
        return CollectionFile(path.name, count, file_sha256(path), path.stat().st_size)
