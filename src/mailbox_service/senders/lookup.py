"""Finding a document for its sender: by id or by the sender's own reference.

A source sees only what it sent. Another source's document is answered exactly as a missing
one (404), so a key cannot learn which ids or references exist elsewhere. Both lookups use a
unique index: `_id`, or `source_key` (storage/documents.py), which is (source, source_ref).
"""

from __future__ import annotations

from mailbox_service.errors import NotFound
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.mongo import Doc

MAX_ID_LENGTH = 64
"""Ids are 32 hex digits; anything much longer is not worth a query."""


class SenderDocuments:
    def __init__(self, documents: DocumentStatusStore) -> None:
        self.documents = documents

    async def get(self, source: str, document_id: str, projection: Doc | None = None) -> Doc:
        """The document `source` sent with this id; NotFound when there is none."""
        found = None
        if len(document_id) <= MAX_ID_LENGTH:
            found = await self.documents.get(document_id, projection)
        if found is None or found.get("source") != source:
            raise NotFound("no such document", field="document_id")
        return found

    async def find(self, source: str, source_ref: str, projection: Doc | None = None) -> Doc | None:
        """The document `source` sent with this reference, or None."""
        return await self.documents.by_source_ref(source, source_ref, projection)

    async def get_by_ref(self, source: str, source_ref: str) -> Doc:
        found = await self.find(source, source_ref)
        if found is None:
            raise NotFound("no document of this source has this source_ref", field="source_ref")
        return found
