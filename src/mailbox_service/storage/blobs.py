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
from minio.error import S3Error

from mailbox_service.errors import DependencyUnavailable
from mailbox_service.observability.metrics import observe
from mailbox_service.settings import S3Settings

CHUNK = 256 * 1024
# The SDK splits large uploads into parts of this size (S3's minimum) and holds one part in
# memory at a time when uploads are not parallel: this bounds an upload's memory to ~5 MiB.
PART_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    last_modified: dt.datetime | None


class BlobStore:
    def __init__(self, settings: S3Settings, *, pool_size: int = 32) -> None:
        self.bucket = settings.bucket
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
            self._client.make_bucket(self.bucket)
            return True

        return await anyio.to_thread.run_sync(_ensure)

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
    ) -> None:
        def _put() -> None:
            data.seek(0)
            self._client.put_object(
                self.bucket,
                key,
                cast(BinaryIO, data),
                length,
                content_type=content_type,
                metadata=metadata or {},  # type: ignore[arg-type]
                part_size=PART_SIZE if length > PART_SIZE else 0,
                num_parallel_uploads=1,
            )

        with observe("s3", "put"):
            await anyio.to_thread.run_sync(_put)

    async def delete(self, key: str) -> None:
        with observe("s3", "delete"):
            await anyio.to_thread.run_sync(self._client.remove_object, self.bucket, key)

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

    async def stream(self, key: str, offset: int = 0, length: int = 0) -> AsyncIterator[bytes]:
        """Yield the object (or a byte range of it) in chunks, never whole in memory."""
        # Timed up to the response headers: the body's pace is the client's.
        with observe("s3", "get"):
            response: Any = await anyio.to_thread.run_sync(
                lambda: self._client.get_object(self.bucket, key, offset=offset, length=length)
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
