"""What senders change on a stored document, and how they find it: the `documents` operations
of senders/ (the document's own repository is storage/documents.py).

    lookup           by id, or by (source, source_ref) through the unique `source_key`
    status update    a compare-and-set that keeps the newest `status_at` (senders/status_updates.py)
    print fallback   a compare-and-set from `digital` to `print` (senders/print_fallback.py)
    bounces          the email channel's soft-bounce count and its hard failure (senders/bounces.py)
    acknowledgement  the documents a pass finds due (senders/acknowledgement.py)

`DocumentStatusStore` is async (API, CLI); `BlockingDocumentStatusStore` is the worker's, with
the print fallback only. Each compare-and-set is one `find_one_and_update` whose condition and
update are built once, below, for both.
"""

from __future__ import annotations

import datetime as dt

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.database import Database

from mailbox_service.storage.documents import source_key
from mailbox_service.storage.mongo import Collections, Doc

COLLECTION = "documents"
MAX_REASON_CHARS = 500
"""A print reason is shown to senders and operators; a relay's essay is cut to this."""

ACKNOWLEDGEMENT_INDEX = IndexModel(
    [
        ("type", ASCENDING),
        ("first_read_at", ASCENDING),
        ("delivery.mode", ASCENDING),
        ("created_at", ASCENDING),
    ],
    name="acknowledgement_due",
)
"""The acknowledgement pass's query: equalities on type, never read, digital, then the
`created_at` range (migration 0011 creates it)."""

# What a sender event needs from the document (senders/events.new_event), nothing more.
EVENT_FIELDS = {"_id": 1, "source": 1, "source_ref": 1, "type": 1, "delivery.mode": 1}


def to_print(document_id: str, reason: str, cause: str, at: dt.datetime) -> tuple[Doc, Doc]:
    """The condition and update that turn a digital delivery into print, keeping the reason
    and appending the change to `delivery.changes`:
    {"at": datetime, "mode": "print", "reason": str, "cause": str}."""
    reason = reason[:MAX_REASON_CHARS]
    update: Doc = {
        "$set": {
            "delivery.mode": "print",
            "delivery.reason": reason,
            "delivery.print_required_at": at,
        },
        "$push": {
            "delivery.changes": {"at": at, "mode": "print", "reason": reason, "cause": cause}
        },
    }
    return {"_id": document_id, "delivery.mode": "digital"}, update


class DocumentStatusStore:
    """Async: the API and the CLI."""

    def __init__(self, collections: Collections) -> None:
        self._docs = collections.documents

    # -- lookup ---------------------------------------------------------------------------

    async def get(self, document_id: str, projection: Doc | None = None) -> Doc | None:
        return await self._docs.find_one({"_id": document_id}, projection)

    async def by_source_ref(
        self, source: str, source_ref: str, projection: Doc | None = None
    ) -> Doc | None:
        return await self._docs.find_one({"source_key": source_key(source, source_ref)}, projection)

    async def with_message_id(self, document_id: str, message_id: str) -> Doc | None:
        """The document whose notification email went out with `message_id` (by `_id`, plus
        an equality on the stored Message-ID: no index of its own)."""
        return await self._docs.find_one(
            {"_id": document_id, "notifications.email.message_id": message_id}
        )

    # -- status update --------------------------------------------------------------------

    async def set_status_if_newer(
        self, document_id: str, source: str, status: str, at: dt.datetime, now: dt.datetime
    ) -> Doc | None:
        """Store `status` as of `at` unless a report with an equal or later `status_at` is
        stored; the document as it was before, or None when nothing was written."""
        return await self._docs.find_one_and_update(
            {
                "_id": document_id,
                "source": source,
                "$or": [{"status_at": None}, {"status_at": {"$lt": at}}],
            },
            {"$set": {"status": status, "status_at": at, "status_updated_at": now}},
            return_document=ReturnDocument.BEFORE,
        )

    # -- print fallback -------------------------------------------------------------------

    async def require_print(
        self, document_id: str, reason: str, cause: str, at: dt.datetime
    ) -> Doc | None:
        """Turn a digital delivery into print; the event fields of the document when this call
        did, None when it was not digital (any more)."""
        condition, update = to_print(document_id, reason, cause, at)
        return await self._docs.find_one_and_update(
            condition, update, projection=EVENT_FIELDS, return_document=ReturnDocument.AFTER
        )

    # -- bounces --------------------------------------------------------------------------

    async def update_email_channel(self, document_id: str, update: Doc) -> Doc | None:
        """Apply an email-channel change (the outbox's update form) unconditionally; the
        document after it."""
        return await self._docs.find_one_and_update(
            {"_id": document_id}, update, return_document=ReturnDocument.AFTER
        )

    async def fail_sent_email(self, document_id: str, update: Doc) -> Doc | None:
        """Apply a failing email-channel change if the email was `sent` and the delivery is
        still digital (a document already going out on paper has nothing left to fall back
        to); the document after it, or None when it did not apply."""
        return await self._docs.find_one_and_update(
            {"_id": document_id, "notifications.email.status": "sent", "delivery.mode": "digital"},
            update,
            return_document=ReturnDocument.AFTER,
        )

    # -- acknowledgement ------------------------------------------------------------------

    async def count(self, query: Doc) -> int:
        return await self._docs.count_documents(query)

    async def ids(self, query: Doc, limit: int) -> list[str]:
        """The ids of at most `limit` documents matching `query`."""
        found = await self._docs.find(query, {"_id": 1}).limit(limit).to_list()
        return [str(doc["_id"]) for doc in found]


class BlockingDocumentStatusStore:
    """Sync: the worker's threads (the print fallback after a failed email)."""

    def __init__(self, db: Database[Doc]) -> None:
        self._docs = db[COLLECTION]

    def require_print(
        self, document_id: str, reason: str, cause: str, at: dt.datetime
    ) -> Doc | None:
        """As `DocumentStatusStore.require_print`."""
        condition, update = to_print(document_id, reason, cause, at)
        found: Doc | None = self._docs.find_one_and_update(
            condition, update, projection=EVENT_FIELDS, return_document=ReturnDocument.AFTER
        )
        return found
