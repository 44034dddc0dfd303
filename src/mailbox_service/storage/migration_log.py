"""Which migrations a database has applied: the `_migrations` collection, one record each."""

from __future__ import annotations

import datetime as dt

from mailbox_service.storage.mongo import Collections


class MigrationLog:
    def __init__(self, collections: Collections) -> None:
        self._log = collections.migrations

    async def applied(self) -> list[str]:
        """Applied migration ids (`NNNN_name`), oldest version first."""
        return [doc["_id"] async for doc in self._log.find({}, {"_id": 1}).sort("_id")]

    async def record(self, migration_id: str, started: dt.datetime, applied: dt.datetime) -> None:
        await self._log.insert_one(
            {"_id": migration_id, "started_at": started, "applied_at": applied}
        )
