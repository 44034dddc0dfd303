"""The sync MongoDB client of worker processes (threads, not an event loop).

Same options as the API's async client (storage/mongo.py): UTC datetimes, fail-fast timeouts,
command metrics. Sync stores (the outbox, sender events, document status ...) are built on the
database handle this gives.
"""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from mailbox_service.settings import MongoSettings
from mailbox_service.storage.mongo import CODEC_OPTIONS, Doc, client_options


def connect_blocking(settings: MongoSettings, pool_size: int) -> MongoClient[Doc]:
    """A sync client for worker threads, with the API's options."""
    return MongoClient(
        settings.url,
        maxPoolSize=max(pool_size, 4),
        **client_options(settings, "mailbox-service-worker"),
    )


def blocking_database(client: MongoClient[Doc], database: str) -> Database[Doc]:
    return client.get_database(database, codec_options=CODEC_OPTIONS)


def documents_collection(client: MongoClient[Doc], database: str) -> Collection[Doc]:
    return blocking_database(client, database)["documents"]
