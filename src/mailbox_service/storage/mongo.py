"""The MongoDB client and the collections the service uses.

Only the subset of MongoDB that FerretDB 1.x also speaks is used: no transactions, change
streams, TTL or partial indexes, `$lookup` or `$facet` (see docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from mailbox_service.settings import MongoSettings

Doc = dict[str, Any]


def connect(settings: MongoSettings) -> AsyncMongoClient[Doc]:
    """A client that fails fast when the server is down instead of hanging a request."""
    return AsyncMongoClient(
        settings.url,
        tz_aware=True,
        tzinfo=dt.UTC,
        serverSelectionTimeoutMS=settings.timeout_ms,
        connectTimeoutMS=settings.timeout_ms,
        socketTimeoutMS=max(settings.timeout_ms * 6, 30_000),
        uuidRepresentation="standard",
        appname="mailbox-service",
    )


@dataclass(frozen=True)
class Collections:
    """Typed handles on every collection, so no code spells a collection name twice."""

    db: AsyncDatabase[Doc]

    @classmethod
    def of(cls, client: AsyncMongoClient[Doc], database: str) -> Collections:
        options: CodecOptions[Doc] = CodecOptions(tz_aware=True, tzinfo=dt.UTC)
        return cls(client.get_database(database, codec_options=options))

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
        return self.db["_migrations"]


def utcnow() -> dt.datetime:
    """Now, truncated to milliseconds: what MongoDB stores, so values round-trip equal."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
