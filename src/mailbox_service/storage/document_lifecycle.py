"""The queries of the end of a document's life: the retention purge, account erasure and the
legal holds' file mirror (lifecycle/ decides; this module only reads and deletes).

Deletes never pass a hold: each delete ANDs `unheld_filter` of the holds read just before it,
so a hold set after a plan was made still wins. Records here are projections (the fields a
tombstone, a blob delete or a decision needs), returned as stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence

from mailbox_service.storage.documents import one_batch
from mailbox_service.storage.holds import HOLD_FIELD, unheld_filter
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.tombstones import TOMBSTONE_FIELDS

RETAIN_UNTIL_INDEX = "retain_until_purge"
"""The purge's index (migration 0007): its reads name it, so the plan never drifts."""

PURGE_FIELDS: Doc = {**TOMBSTONE_FIELDS, "blob.key": 1, "blob.version_id": 1}
ERASURE_FIELDS: Doc = {
    "_id": 1,
    "type": 1,
    "account_id": 1,
    "source": 1,
    "retain_until": 1,
    "blob.key": 1,
    "blob.sha256": 1,
    HOLD_FIELD: 1,
}


class DocumentLifecycleStore:
    def __init__(self, collections: Collections) -> None:
        self._documents = collections.documents
        self._accounts = collections.accounts

    # --- retention ---------------------------------------------------------------------------

    async def expired(self, at: dt.datetime) -> AsyncIterator[Doc]:
        """Every document whose retention ended by `at` (type, account, hold, retain_until)."""
        cursor = self._documents.find(
            {"retain_until": {"$lte": at}},
            {"type": 1, "account_id": 1, HOLD_FIELD: 1, "retain_until": 1},
        ).hint(RETAIN_UNTIL_INDEX)
        async for record in cursor:
            yield record

    async def purge_page(
        self, cutoff: dt.datetime, type_filter: Doc, held_accounts: list[str], n: int
    ) -> list[Doc]:
        """The next `n` unheld documents past `cutoff` of the types `type_filter` selects,
        oldest retention first, in one batch."""
        query = {"retain_until": {"$lte": cutoff}, **type_filter, **unheld_filter(held_accounts)}
        found = (
            self._documents.find(query, PURGE_FIELDS)
            .sort("retain_until", 1)
            .hint(RETAIN_UNTIL_INDEX)
        )
        return [record async for record in one_batch(found, n)]

    # --- erasure -----------------------------------------------------------------------------

    async def account_exists(self, account_id: str) -> bool:
        return await self._accounts.find_one({"_id": account_id}, {"_id": 1}) is not None

    async def of_account(self, account_id: str) -> AsyncIterator[Doc]:
        """Every document of the account (ERASURE_FIELDS), by id."""
        cursor = self._documents.find({"account_id": account_id}, ERASURE_FIELDS).sort("_id", 1)
        async for record in cursor:
            yield record

    async def forget_account(self, account_id: str, fields: Sequence[str], at: dt.datetime) -> None:
        """Remove the account's personal `fields` and mark it erased at `at`."""
        await self._accounts.update_one(
            {"_id": account_id},
            {"$unset": dict.fromkeys(fields, ""), "$set": {"erased_at": at, "updated_at": at}},
        )

    # --- shared by purge and erasure ---------------------------------------------------------

    async def delete_unheld(self, document_ids: list[str], held_accounts: list[str]) -> int:
        """Delete those of `document_ids` under no hold; how many went."""
        result = await self._documents.delete_many(
            {"_id": {"$in": document_ids}, **unheld_filter(held_accounts)}
        )
        return result.deleted_count

    async def remaining(self, document_ids: list[str]) -> set[str]:
        """Which of `document_ids` still exist (after a delete a hold partly refused)."""
        found = self._documents.find({"_id": {"$in": document_ids}}, {"_id": 1})
        return {record["_id"] async for record in found}

    # --- legal holds -------------------------------------------------------------------------

    async def write_once_of(self, account_id: str, types: list[str]) -> AsyncIterator[Doc]:
        """The account's documents of the write-once `types` (type, blob key, hold)."""
        cursor = self._documents.find(
            {"account_id": account_id, "type": {"$in": types}},
            {"type": 1, "blob.key": 1, HOLD_FIELD: 1, "account_id": 1},
        )
        async for record in cursor:
            yield record
