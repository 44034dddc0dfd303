"""Legal holds: a document, or a whole account, that must survive purge and erasure.

Where a hold lives:
- a document hold is a field on the document, `hold: {reason, set_at, set_by}` (null or absent
  when there is none), so a query can leave held documents out without a second lookup;
- an account hold is one document in `holds`, `{_id: account_id, reason, set_at, set_by}`. It
  covers every document of the account, present and future, without touching them.

Anything that deletes documents (purge, erasure) asks `is_held(document)` or adds
`unheld_filter(held_accounts)` to its query; account holds are few (a litigation list), so they
are read whole once per run.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections, Doc

HOLD_FIELD = "hold"


class Hold(msgspec.Struct, frozen=True):
    """One hold, as the API and the CLI show it."""

    scope: str
    """"document" or "account"."""
    id: str
    """The document id or account id it covers."""
    reason: str
    set_at: dt.datetime
    set_by: str
    account_id: str | None = None
    """For a document hold: the account the document belongs to."""


def document_hold(document: Doc) -> Doc | None:
    """The document's own hold, or None."""
    hold = document.get(HOLD_FIELD)
    return hold if isinstance(hold, dict) else None


def unheld_filter(held_accounts: list[str]) -> Doc:
    """A query filter matching only documents under no hold (AND it into a delete query)."""
    query: Doc = {HOLD_FIELD: None}
    if held_accounts:
        query["account_id"] = {"$nin": held_accounts}
    return query


class HoldStore:
    """Reads and writes holds in MongoDB (S3 legal holds: lifecycle/legal_holds.py)."""

    def __init__(self, collections: Collections) -> None:
        self._documents = collections.documents
        self._accounts = collections.holds

    async def held_accounts(self) -> list[str]:
        return [doc["_id"] async for doc in self._accounts.find({}, {"_id": 1})]

    async def account_hold(self, account_id: str) -> Doc | None:
        return await self._accounts.find_one({"_id": account_id})

    async def is_held(self, document: Doc) -> bool:
        """Whether the document is under a hold of its own or of its account."""
        if document_hold(document) is not None:
            return True
        return await self.account_hold(document["account_id"]) is not None

    async def set_document(self, document_id: str, reason: str, set_by: str) -> Doc | None:
        """Hold one document; the updated document, or None when there is no such document.
        Setting it again replaces the reason (the first `set_at` is kept)."""
        now = utcnow()
        existing = await self._documents.find_one({"_id": document_id}, {HOLD_FIELD: 1})
        if existing is None:
            return None
        set_at = (document_hold(existing) or {}).get("set_at", now)
        hold = {"reason": reason, "set_at": set_at, "set_by": set_by}
        return await self._documents.find_one_and_update(
            {"_id": document_id},
            {"$set": {HOLD_FIELD: hold}},
            return_document=True,
        )

    async def release_document(self, document_id: str) -> Doc | None:
        """Lift a document's own hold; the document before the change, or None when it had
        no hold (or does not exist)."""
        return await self._documents.find_one_and_update(
            {"_id": document_id, HOLD_FIELD: {"$ne": None}},
            {"$set": {HOLD_FIELD: None}},
        )

    async def set_account(self, account_id: str, reason: str, set_by: str) -> Doc:
        now = utcnow()
        await self._accounts.update_one(
            {"_id": account_id},
            {
                "$set": {"reason": reason, "set_by": set_by},
                "$setOnInsert": {"set_at": now},
            },
            upsert=True,
        )
        found = await self._accounts.find_one({"_id": account_id})
        assert found is not None
        return found

    async def release_account(self, account_id: str) -> Doc | None:
        """Lift an account hold; the hold that was lifted, or None."""
        return await self._accounts.find_one_and_delete({"_id": account_id})

    async def all(self) -> list[Hold]:
        """Every hold: account holds first, then document holds, each oldest first."""
        holds = [
            Hold("account", doc["_id"], doc["reason"], doc["set_at"], doc["set_by"], doc["_id"])
            async for doc in self._accounts.find({}).sort("set_at", 1)
        ]
        cursor = self._documents.find(
            {HOLD_FIELD: {"$ne": None}}, {HOLD_FIELD: 1, "account_id": 1}
        ).sort(f"{HOLD_FIELD}.set_at", 1)
        async for doc in cursor:
            hold = doc[HOLD_FIELD]
            holds.append(
                Hold(
                    "document",
                    doc["_id"],
                    hold["reason"],
                    hold["set_at"],
                    hold["set_by"],
                    doc["account_id"],
                )
            )
        return holds

    async def for_document(self, document: Doc) -> list[Hold]:
        """The holds that cover `document` (its own, its account's): for evidence bundles."""
        holds: list[Hold] = []
        own = document_hold(document)
        if own is not None:
            holds.append(
                Hold(
                    "document",
                    document["_id"],
                    own["reason"],
                    own["set_at"],
                    own["set_by"],
                    document["account_id"],
                )
            )
        account = await self.account_hold(document["account_id"])
        if account is not None:
            holds.append(
                Hold(
                    "account",
                    account["_id"],
                    account["reason"],
                    account["set_at"],
                    account["set_by"],
                    account["_id"],
                )
            )
        return holds
