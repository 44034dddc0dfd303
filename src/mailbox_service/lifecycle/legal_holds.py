"""Setting and lifting legal holds: MongoDB first, then S3 legal holds on write-once files.

A held document survives purge and erasure (they ask `holds.py`). When its type stores
write-once files and the bucket has object locking, its blob also gets an S3 legal hold, so no
credentials can delete it while the hold lasts, even after its retention ends. Lifting the
last hold on a document (its own or its account's) clears the S3 legal hold again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from minio.error import S3Error

from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import DependencyUnavailable, NotFound
from mailbox_service.log import get_logger
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.document_lifecycle import DocumentLifecycleStore
from mailbox_service.storage.holds import Hold, HoldStore, document_hold
from mailbox_service.storage.mongo import Collections, Doc

log = get_logger(__name__)


class LegalHolds:
    def __init__(
        self, collections: Collections, blobs: BlobStore, registry: DocumentTypeRegistry
    ) -> None:
        self.store = HoldStore(collections)
        self._documents = DocumentLifecycleStore(collections)
        self._blobs = blobs
        self._registry = registry

    async def hold_document(self, document_id: str, reason: str, set_by: str) -> Hold:
        document = await self.store.set_document(document_id, reason, set_by)
        if document is None:
            raise NotFound(f"document {document_id!r} not found")
        await self._mirror(document, on=True)
        return (await self.store.for_document(document))[0]

    async def release_document(self, document_id: str) -> Hold:
        before = await self.store.release_document(document_id)
        if before is None:
            raise NotFound(f"document {document_id!r} has no hold")
        hold = document_hold(before)
        assert hold is not None
        if await self.store.account_hold(before["account_id"]) is None:
            await self._mirror(before, on=False)
        return Hold(
            "document",
            document_id,
            hold["reason"],
            hold["set_at"],
            hold["set_by"],
            before["account_id"],
        )

    async def hold_account(self, account_id: str, reason: str, set_by: str) -> Hold:
        doc = await self.store.set_account(account_id, reason, set_by)
        async for document in self._write_once_of(account_id):
            await self._mirror(document, on=True)
        return Hold("account", account_id, doc["reason"], doc["set_at"], doc["set_by"], account_id)

    async def release_account(self, account_id: str) -> Hold:
        doc = await self.store.release_account(account_id)
        if doc is None:
            raise NotFound(f"account {account_id!r} has no hold")
        async for document in self._write_once_of(account_id):
            if document_hold(document) is None:
                await self._mirror(document, on=False)
        return Hold("account", account_id, doc["reason"], doc["set_at"], doc["set_by"], account_id)

    async def all(self) -> list[Hold]:
        return await self.store.all()

    def _write_once_of(self, account_id: str) -> AsyncIterator[Doc]:
        types = [t.name for t in self._registry if t.immutable_files]
        return self._documents.write_once_of(account_id, types)

    async def _mirror(self, document: Doc, *, on: bool) -> None:
        if document["type"] not in self._registry.names():
            return
        if not self._registry.get(document["type"]).immutable_files:
            return
        if not await self._blobs.object_lock_enabled():
            return
        try:
            await self._blobs.set_legal_hold(document["blob"]["key"], on)
        except S3Error as exc:
            if exc.code not in {"NoSuchKey", "NoSuchVersion"}:
                raise DependencyUnavailable(f"minio: legal hold: {exc.code}") from exc
            # The hold in MongoDB still protects the document; there is no file to protect.
            log.warning("blob.legal_hold_missing_file", document_id=document["_id"])
            return
        except Exception as exc:
            raise DependencyUnavailable(f"minio: legal hold: {type(exc).__name__}") from exc
        log.info("blob.legal_hold", document_id=document["_id"], on=on)
