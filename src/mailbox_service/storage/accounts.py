"""AccountStore: paperless consent, notification email and locale per customer account.

Every consent change is appended to `consent_history` with its time and who made it, because
a customer's opt-in is evidence that must survive later changes. The account keeps only the
last `CONSENT_HISTORY_KEPT` of them: every ingest reads this document, and a customer toggling
consent must not make it grow without bound. The full history is the audit trail's
(`preferences.changed`, docs/security.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections, Doc


class ConsentChange(msgspec.Struct, frozen=True):
    paperless: bool
    at: dt.datetime
    by: str


class Account(msgspec.Struct, frozen=True):
    account_id: str
    paperless: bool = False
    email: str | None = None
    locale: str | None = None
    paperless_changed_at: dt.datetime | None = None
    email_changed_at: dt.datetime | None = None
    locale_changed_at: dt.datetime | None = None
    consent_history: list[ConsentChange] = []
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


CONSENT_HISTORY_KEPT = 50
"""Consent changes kept in the account document, newest last; older ones are dropped."""

_UNSET: Any = object()


def _to_account(doc: Doc) -> Account:
    fields = {k: v for k, v in doc.items() if k in Account.__struct_fields__}
    fields["account_id"] = doc["_id"]
    return msgspec.convert(fields, Account, from_attributes=False, strict=False)


class AccountStore:
    def __init__(self, collections: Collections) -> None:
        self._accounts = collections.accounts

    async def get(self, account_id: str) -> Account | None:
        doc = await self._accounts.find_one({"_id": account_id})
        return _to_account(doc) if doc else None

    async def get_many(self, account_ids: list[str]) -> dict[str, Account]:
        cursor = self._accounts.find({"_id": {"$in": account_ids}})
        return {doc["_id"]: _to_account(doc) async for doc in cursor}

    async def update(
        self,
        account_id: str,
        *,
        by: str,
        paperless: bool | None = None,
        email: str | None = _UNSET,
        locale: str | None = _UNSET,
    ) -> Account:
        """Apply the given changes; unchanged values leave their timestamps alone."""
        now = utcnow()
        current = await self.get(account_id) or Account(account_id=account_id)
        sets: dict[str, Any] = {"updated_at": now}
        push: dict[str, Any] = {}
        if paperless is not None and paperless != current.paperless:
            sets |= {"paperless": paperless, "paperless_changed_at": now}
            change = {"paperless": paperless, "at": now, "by": by}
            push["consent_history"] = {"$each": [change], "$slice": -CONSENT_HISTORY_KEPT}
        if email is not _UNSET and email != current.email:
            sets |= {"email": email, "email_changed_at": now}
        if locale is not _UNSET and locale != current.locale:
            sets |= {"locale": locale, "locale_changed_at": now}
        update: dict[str, Any] = {
            "$set": sets,
            "$setOnInsert": {"created_at": now},
        }
        if "paperless" not in sets:
            update["$setOnInsert"]["paperless"] = False
        if push:
            update["$push"] = push
        await self._accounts.update_one({"_id": account_id}, update, upsert=True)
        account = await self.get(account_id)
        assert account is not None
        return account
