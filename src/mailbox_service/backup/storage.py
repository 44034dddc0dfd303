"""The database and bucket a backup reads and a restore writes, through blocking clients.

Backup and restore are batch jobs: a thread pool over the blocking MinIO SDK and the blocking
pymongo client moves files in parallel with less machinery than the event loop would need.
"""

from __future__ import annotations

from dataclasses import dataclass

from minio import Minio
from pymongo import MongoClient
from pymongo.database import Database

from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.mongo import CODEC_OPTIONS, MIGRATIONS_COLLECTION, Doc, client_options


@dataclass
class Storage:
    client: MongoClient[Doc]
    db: Database[Doc]
    minio: Minio
    bucket: str

    @classmethod
    def open(cls, settings: Settings, *, pool_size: int = 32) -> Storage:
        client: MongoClient[Doc] = MongoClient(
            settings.mongo.url,
            uuidRepresentation="standard",
            **client_options(settings.mongo, "mailbox-backup"),
        )
        db = client.get_database(settings.mongo.database, codec_options=CODEC_OPTIONS)
        blobs = BlobStore(settings.s3, pool_size=pool_size)
        return cls(client, db, blobs.client, settings.s3.bucket)

    def close(self) -> None:
        self.client.close()

    def data_collections(self) -> list[str]:
        """Every collection a backup copies: all but `_migrations` (its ids go into the
        manifest; a restore re-runs the migrations, which also rebuild the indexes)."""
        names = self.db.list_collection_names()
        copied = (n for n in names if n != MIGRATIONS_COLLECTION and not n.startswith("system."))
        return sorted(copied)

    def applied_migrations(self) -> list[str]:
        log = self.db[MIGRATIONS_COLLECTION]
        return [doc["_id"] for doc in log.find({}, {"_id": 1}).sort("_id", 1)]
