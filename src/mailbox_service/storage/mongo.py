"""The MongoDB client and the collections the service uses.

Only what genuine MongoDB and DocumentDB (FerretDB 2, the local and test engine) both do is
used: no multi-document transactions, no change streams; write batches of at most 25,000
operations; no compound unique indexes (slow on DocumentDB); and request-sized reads in one
batch (see docs/architecture.md, "MongoDB: the common subset").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from mailbox_service.observability.mongo_events import command_listeners
from mailbox_service.settings import MongoSettings

Doc = dict[str, Any]


# Datetimes come back timezone-aware in UTC, for every client and every collection handle.
CODEC_OPTIONS: CodecOptions[Doc] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)


def client_options(settings: MongoSettings, appname: str) -> dict[str, Any]:
    """Options every client shares (async in the API, sync in the worker): UTC datetimes, and
    timeouts that fail fast when the server is down instead of hanging a request or a job."""
    return {
        "tz_aware": True,
        "tzinfo": dt.UTC,
        "serverSelectionTimeoutMS": settings.timeout_ms,
        "connectTimeoutMS": settings.timeout_ms,
        "socketTimeoutMS": max(settings.timeout_ms * 6, 30_000),
        "appname": appname,
        # Command timings for /metrics and spans for traces (none when both are off).
        "event_listeners": command_listeners(),
    }


def connect(settings: MongoSettings) -> AsyncMongoClient[Doc]:
    return AsyncMongoClient(
        settings.url, uuidRepresentation="standard", **client_options(settings, "mailbox-service")
    )


async def ping(client: AsyncMongoClient[Doc], database: str) -> None:
    """One round trip to the server (readiness): fails when it does not answer."""
    await client.get_database(database).command("ping")


MIGRATIONS_COLLECTION = "_migrations"
"""Which migrations ran (`storage/migration_log.py`); backups copy its ids, not its records."""


@dataclass(frozen=True)
class Collections:
    """Typed handles on every collection, so no code spells a collection name twice."""

    db: AsyncDatabase[Doc]

    @classmethod
    def of(cls, client: AsyncMongoClient[Doc], database: str) -> Collections:
        return cls(client.get_database(database, codec_options=CODEC_OPTIONS))

    @property
    def documents(self) -> AsyncCollection[Doc]:
        return self.db["documents"]

    @property
    def accounts(self) -> AsyncCollection[Doc]:
        return self.db["accounts"]

    @property
    def api_keys(self) -> AsyncCollection[Doc]:
        return self.db["api_keys"]

    @property
    def migrations(self) -> AsyncCollection[Doc]:
        return self.db[MIGRATIONS_COLLECTION]

    @property
    def audit(self) -> AsyncCollection[Doc]:
        return self.db["audit"]

    @property
    def holds(self) -> AsyncCollection[Doc]:
        """Account-wide legal holds, one per account (`_id` = account id)."""
        return self.db["holds"]

    @property
    def tombstones(self) -> AsyncCollection[Doc]:
        """What is left of a purged or erased document: when and why it went."""
        return self.db["tombstones"]

    @property
    def leases(self) -> AsyncCollection[Doc]:
        """Named leases that keep periodic jobs (the daily purge) to one process at a time."""
        return self.db["leases"]

    @property
    def sender_events(self) -> AsyncCollection[Doc]:
        """What happened to each document, for its sender (senders/events.py)."""
        return self.db["sender_events"]

    @property
    def webhook_endpoints(self) -> AsyncCollection[Doc]:
        """Where each source's events go, and their signing secrets (webhooks/endpoints.py)."""
        return self.db["webhook_endpoints"]

    @property
    def webhook_deliveries(self) -> AsyncCollection[Doc]:
        """One record per event and endpoint: state and attempts (webhooks/deliveries.py)."""
        return self.db["webhook_deliveries"]

    @property
    def audit_heads(self) -> AsyncCollection[Doc]:
        """One document per UTC day: the last sequence number and hash of that day's chain."""
        return self.db["audit_heads"]
