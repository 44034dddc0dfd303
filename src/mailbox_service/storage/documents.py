"""DocumentStore: the `documents` collection, the source of truth for every document.

Notification state lives on the document itself (`notifications.<channel>`), which makes the
collection the outbox: see notifications/outbox.py for the claim and status updates.
"""

from __future__ import annotations

import uuid
from typing import Any

from pymongo.errors import DuplicateKeyError

from mailbox_service.storage.mongo import Collections, Doc


class DuplicateSourceRef(Exception):
    """(source, source_ref) already exists: the caller decides between replay and conflict."""


def new_document_id() -> str:
    # Random, not time-ordered: ids reveal nothing about volume and never collide across nodes.
    return uuid.uuid4().hex


def blob_key(document_id: str) -> str:
    # A short hashed prefix spreads keys across MinIO's namespace.
    return f"documents/{document_id[:2]}/{document_id}"


class DocumentStore:
    def __init__(self, collections: Collections) -> None:
        self._docs = collections.documents

    @property
    def collection(self) -> Any:
        return self._docs

    async def insert(self, document: Doc) -> None:
        try:
            await self._docs.insert_one(document)
        except DuplicateKeyError as exc:
            raise DuplicateSourceRef(str(exc)) from exc

    async def by_source_ref(self, source: str, source_ref: str) -> Doc | None:
        return await self._docs.find_one({"source": source, "source_ref": source_ref})

    async def get(self, document_id: str) -> Doc | None:
        return await self._docs.find_one({"_id": document_id})

    async def get_for_accounts(self, document_id: str, accounts: list[str]) -> Doc | None:
        """The document if it belongs to one of `accounts`, else None (callers answer 404)."""
        return await self._docs.find_one({"_id": document_id, "account_id": {"$in": accounts}})

    async def has_blob_key(self, key: str) -> bool:
        return await self._docs.find_one({"blob.key": key}, {"_id": 1}) is not None
