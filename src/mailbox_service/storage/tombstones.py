"""Tombstones: the small record a purged or erased document leaves behind.

`tombstones` holds `{_id: document id, source, type, account_id, sha256, retain_until,
purged_at, reason}`, so that evidence for a document that is gone can answer 410 with when and
why. `reason` is "retention" (the purge) or "erased" (account erasure). Nothing personal is
kept: no title, attributes or file name.

A tombstone is written before the document is deleted: a crash in between leaves a tombstone
beside a live document, which the next run deletes again (writing is idempotent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final, Literal

from pymongo import ReplaceOne

from mailbox_service.storage.mongo import Collections, Doc

TombstoneReason = Literal["retention", "erased"]
REASONS: Final = ("retention", "erased")

TOMBSTONE_FIELDS: Final = {
    "_id": 1,
    "source": 1,
    "type": 1,
    "account_id": 1,
    "blob.sha256": 1,
    "retain_until": 1,
}
"""The projection a deleter needs to read before it writes tombstones."""


def tombstone_of(document: Doc, reason: TombstoneReason, at: dt.datetime) -> Doc:
    return {
        "_id": document["_id"],
        "source": document.get("source"),
        "type": document.get("type"),
        "account_id": document.get("account_id"),
        "sha256": (document.get("blob") or {}).get("sha256"),
        "retain_until": document.get("retain_until"),
        "purged_at": at,
        "reason": reason,
    }


class TombstoneStore:
    def __init__(self, collections: Collections) -> None:
        self._tombstones = collections.tombstones

    async def write(
        self, documents: Iterable[Doc], reason: TombstoneReason, at: dt.datetime
    ) -> int:
        """Write one tombstone per document (replacing an earlier one for the same id)."""
        if reason not in REASONS:
            raise ValueError(f"unknown tombstone reason {reason!r}")
        ops = [
            ReplaceOne({"_id": doc["_id"]}, tombstone_of(doc, reason, at), upsert=True)
            for doc in documents
        ]
        if not ops:
            return 0
        await self._tombstones.bulk_write(ops, ordered=False)
        return len(ops)

    async def remove(self, document_ids: list[str]) -> None:
        """Take back tombstones of documents that were not deleted after all (a hold won)."""
        if document_ids:
            await self._tombstones.delete_many({"_id": {"$in": document_ids}})

    async def get(self, document_id: str) -> Doc | None:
        """The tombstone of a document that is gone, or None."""
        return await self._tombstones.find_one({"_id": document_id})
