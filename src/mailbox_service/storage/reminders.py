"""The reminder pass's reads and writes on `documents` (and the consent of their accounts).

What a reminder is and when one is sent: senders/reminders.py; the stored due date:
senders/reminder_due.py. Every page of the pass reads the partial index `reminder_due`
(`reminder.due_at`, `_id`; migration 0012) with an equality and a range; a claim and its
outcome are one compare-and-set each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne

from mailbox_service.storage.documents import one_batch
from mailbox_service.storage.mongo import Collections, Doc

INDEX = "reminder_due"
"""The partial index on (`reminder.due_at`, `_id`) every page reads (migration 0012)."""
DONE = ("sent", "failed")
"""Reminder states a pass never looks at again."""

READ_FIELDS = {
    "type": 1,
    "source": 1,
    "source_ref": 1,
    "account_id": 1,
    "title": 1,
    "issued_at": 1,
    "attributes": 1,
    "recipient": 1,
    "delivery": 1,
    "read_at": 1,
    "archived_at": 1,
    "status": 1,
    "reminder": 1,
    "notifications.email.status": 1,
}
"""What the pass reads of a document: its checks, the email, and the sender event fields."""


class ReminderStore:
    def __init__(self, collections: Collections) -> None:
        self._docs = collections.documents
        self._accounts = collections.accounts

    async def due_page(self, due: dt.datetime, after: str | None, size: int) -> list[Doc]:
        """Up to `size` documents due on `due` whose reminder is still open, after the id
        `after`, in `_id` order: no page costs more than the first."""
        condition: Doc = {"reminder.due_at": due, "reminder.status": {"$nin": list(DONE)}}
        if after is not None:
            condition["_id"] = {"$gt": after}
        cursor = self._docs.find(condition, READ_FIELDS).sort(
            [("reminder.due_at", ASCENDING), ("_id", ASCENDING)]
        )
        return await one_batch(cursor, size).to_list(None)

    async def accounts_of(self, account_ids: list[str]) -> dict[str, Doc]:
        """Consent and erasure of these accounts, by id: one read by `_id`."""
        cursor = self._accounts.find(
            {"_id": {"$in": account_ids}}, {"paperless": 1, "erased_at": 1}
        )
        found = await one_batch(cursor, len(account_ids)).to_list()
        return {account["_id"]: account for account in found}

    async def claim(
        self,
        condition: Doc,
        *,
        token: str,
        worker: str,
        now: dt.datetime,
        lease_until: dt.datetime,
    ) -> Doc | None:
        """Take the reminder of the document `condition` matches (senders/reminders.py's
        claim_filter) for one send; the document as it was before, or None."""
        return await self._docs.find_one_and_update(
            condition,
            {
                "$set": {
                    "reminder.status": "sending",
                    "reminder.claim": token,
                    "reminder.worker": worker,
                    "reminder.lease_until": lease_until,
                    "reminder.at": now,
                },
                "$inc": {"reminder.attempts": 1},
            },
            projection=READ_FIELDS,
            return_document=ReturnDocument.BEFORE,
        )

    async def finish(self, document_id: str, token: str, outcome: Mapping[str, Any]) -> bool:
        """Record a send's outcome (fields of `reminder` to set) if the claim `token` still
        holds it; False when its lease was taken over."""
        result = await self._docs.update_one(
            {"_id": document_id, "reminder.claim": token},
            {
                "$set": {f"reminder.{key}": value for key, value in outcome.items()},
                "$unset": {"reminder.claim": "", "reminder.lease_until": "", "reminder.worker": ""},
            },
        )
        return result.modified_count == 1

    # -- backfill (migration 0012, `reminders backfill`) ----------------------------------

    def without_due(self, type_name: str, batch: int) -> AsyncIterator[Doc]:
        """The attributes of every `type_name` document stored without a `reminder` field."""
        return self._docs.find(
            {"type": type_name, "reminder": {"$exists": False}}, {"attributes": 1}
        ).batch_size(batch)

    async def set_due(self, due: list[tuple[str, dt.datetime]]) -> int:
        """Give each document its `reminder.due_at` unless it got a `reminder` meanwhile; the
        number written. One unordered bulk write."""
        if not due:
            return 0
        writes = [
            UpdateOne(
                {"_id": document_id, "reminder": {"$exists": False}},
                {"$set": {"reminder": {"due_at": at}}},
            )
            for document_id, at in due
        ]
        result = await self._docs.bulk_write(writes, ordered=False)
        return result.modified_count
