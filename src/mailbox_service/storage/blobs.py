"""BlobStore: document files in an S3 bucket (MinIO).

The MinIO SDK is blocking; every call runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import anyio.to_thread
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.retention import Retention

from mailbox_service.errors import DependencyUnavailable, ServiceError
from mailbox_service.observability.metrics import observe
from mailbox_service.settings import S3Settings

CHUNK = 256 * 1024
# The SDK splits large uploads into parts of this size (S3's minimum) and holds one part in
# memory at a time when uploads are not parallel: this bounds an upload's memory to ~5 MiB.
PART_SIZE = 5 * 1024 * 1024


class DeleteRefused(ServiceError):
    """S3 refused to remove a version of a blob: a retention or a legal hold protects it."""

    def __init__(self, key: str, code: str, message: str) -> None:
        super().__init__(f"{key}: {code}: {message}")
        self.key = key
        self.code = code


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    last_modified: dt.datetime | None


class BlobStore:
    def __init__(self, settings: S3Settings, *, pool_size: int = 32) -> None:
        self.bucket = settings.bucket
        self.lock_mode = COMPLIANCE if settings.lock_mode == "COMPLIANCE" else GOVERNANCE
        self._object_lock: bool | None = None
        http = urllib3.PoolManager(
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
        )
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

    @property
    def client(self) -> Minio:
        return self._client

    async def ensure_bucket(self) -> bool:
        """Create the bucket when missing; True when it had to be created."""

        def _ensure() -> bool:
            if self._client.bucket_exists(self.bucket):
                return False
            # Object locking can only be chosen at creation; write-once files need it.
            self._client.make_bucket(self.bucket, object_lock=True)
            return True

        return await anyio.to_thread.run_sync(_ensure)

    async def object_lock_enabled(self) -> bool:
        """Whether the bucket was created with object locking (asked once per process)."""

        def _ask() -> bool:
            try:
                config = self._client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code in {"ObjectLockConfigurationNotFoundError", "InvalidRequest"}:
                    return False
                raise
            return config is not None

        if self._object_lock is None:
            self._object_lock = await anyio.to_thread.run_sync(_ask)
        return self._object_lock

    async def lock(self, key: str, until: dt.datetime) -> None:
        """Write-once: no version of `key` can be deleted or replaced before `until` (the
        bucket's object locking must be on; the mode is MAILBOX_S3_LOCK_MODE)."""
        retention = Retention(self.lock_mode, until.astimezone(dt.UTC))
        with observe("s3", "lock"):
            await anyio.to_thread.run_sync(
                lambda: self._client.set_object_retention(self.bucket, key, retention)
            )

    async def set_legal_hold(self, key: str, on: bool) -> None:
        """S3 legal hold: while on, no version of `key` can be deleted, whatever its retention."""

        def _set() -> None:
            if on:
                self._client.enable_object_legal_hold(self.bucket, key)
            else:
                self._client.disable_object_legal_hold(self.bucket, key)

        with observe("s3", "legal_hold"):
            await anyio.to_thread.run_sync(_set)

    async def check(self) -> None:
        """Raise DependencyUnavailable unless the bucket answers."""
        try:
            exists = await anyio.to_thread.run_sync(self._client.bucket_exists, self.bucket)
        except Exception as exc:
            raise DependencyUnavailable(f"minio: {type(exc).__name__}: {exc}") from exc
        if not exists:
            raise DependencyUnavailable(f"minio: bucket {self.bucket!r} does not exist")

    async def put(
        self,
        key: str,
        data: IO[bytes],
        length: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> str | None:
        """Store the object; its version id in a versioned (object-locking) bucket, else None."""

        def _put() -> str | None:
            data.seek(0)
            result = self._client.put_object(
                self.bucket,
                key,
                cast(BinaryIO, data),
                length,
                content_type=content_type,
                metadata=metadata or {},  # type: ignore[arg-type]
                part_size=PART_SIZE if length > PART_SIZE else 0,
                num_parallel_uploads=1,
            )
            return result.version_id

        with observe("s3", "put"):
            return await anyio.to_thread.run_sync(_put)

    async def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        """Remove `key` for good. In a bucket with object locking (always versioned) a plain
        delete would only add a delete marker and keep the data, so every version is removed;
        a version still under retention or legal hold makes this raise S3Error.

        `bypass_governance` removes versions under GOVERNANCE retention (the credentials need
        s3:BypassGovernanceRetention). No path of the service uses it; it is there for tests
        that clean up and for an operator's repair. It never lifts COMPLIANCE or a legal hold.
        """
        locking = await self.object_lock_enabled()

        def _delete() -> None:
            if not locking:
                self._client.remove_object(self.bucket, key)
                return
            versions = [
                DeleteObject(key, obj.version_id)
                for obj in self._client.list_objects(self.bucket, prefix=key, include_version=True)
                if obj.object_name == key
            ]
            if not versions:
                return
            errors = list(
                self._client.remove_objects(
                    self.bucket, versions, bypass_governance_mode=bypass_governance
                )
            )
            if errors:
                raise DeleteRefused(key, errors[0].code or "", errors[0].message or "")

        with observe("s3", "delete"):
            await anyio.to_thread.run_sync(_delete)

    async def delete_versions(self, versions: list[tuple[str, str]]) -> list[str]:
        """Remove exact (key, version id) pairs, up to 1,000 per request; the keys S3 refused
        (a lock protects them). The purge's bulk path: no listing per key."""

        def _delete() -> list[str]:
            refused: list[str] = []
            for start in range(0, len(versions), 1000):
                chunk = [
                    DeleteObject(key, version) for key, version in versions[start : start + 1000]
                ]
                refused += [
                    error.name or "" for error in self._client.remove_objects(self.bucket, chunk)
                ]
            return refused

        with observe("s3", "delete"):
            return await anyio.to_thread.run_sync(_delete)

    async def exists(self, key: str) -> bool:
        def _stat() -> bool:
            try:
                self._client.stat_object(self.bucket, key)
            except S3Error as exc:
                if exc.code in {"NoSuchKey", "NoSuchObject"}:
                    return False
                raise
            return True

        with observe("s3", "stat"):
            return await anyio.to_thread.run_sync(_stat)

    async def stream(
        self, key: str, offset: int = 0, length: int = 0, *, version_id: str | None = None
    ) -> AsyncIterator[bytes]:
        """Yield the object (or a byte range of it) in chunks, never whole in memory.

        `version_id` reads that exact version: in a versioned bucket anyone with write access
        can put a newer version over a write-once file, and that must not change what we serve.
        """
        # Timed up to the response headers: the body's pace is the client's.
        with observe("s3", "get"):
            response: Any = await anyio.to_thread.run_sync(
                lambda: self._client.get_object(
                    self.bucket, key, offset=offset, length=length, version_id=version_id
                )
            )
        try:
            while True:
                chunk = await anyio.to_thread.run_sync(response.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    def iter_older_than(self, cutoff: dt.datetime) -> Iterator[BlobInfo]:
        """Blocking: every object last modified before `cutoff` (for the orphan sweep)."""
        for obj in self._client.list_objects(self.bucket, recursive=True):
            if obj.last_modified is not None and obj.last_modified < cutoff and obj.object_name:
                yield BlobInfo(obj.object_name, obj.size or 0, obj.last_modified)
