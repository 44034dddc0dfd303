"""IngestService: the one pipeline every door (HTTP, backfill) goes through.

validate → (replay check) → blob to MinIO → metadata to MongoDB → enqueue notifications.
Blob first, then metadata: if the metadata write fails the blob is removed again, and the
orphan sweep covers a crash between the two. There is never metadata without a blob.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import msgspec

from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.errors import Conflict, InvalidMetadata, UnsupportedContent
from mailbox_service.ingestion.delivery import DeliveryDecision, decide_delivery
from mailbox_service.ingestion.schemas import DocumentMetadata, IngestResponse, error_field
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import Channel
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.storage.accounts import AccountStore
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.documents import (
    DocumentStore,
    DuplicateSourceRef,
    blob_key,
    new_document_id,
)
from mailbox_service.storage.mongo import Doc, utcnow

log = get_logger(__name__)

Origin = Literal["api", "backfill"]


@dataclass(frozen=True)
class IngestOutcome:
    """`created` is False for an identical replay (HTTP 200 instead of 201)."""

    created: bool
    response: IngestResponse
    document: Doc


@dataclass(frozen=True)
class Checked:
    """A request that passed every check that needs no write."""

    doctype: DocumentType
    attributes: msgspec.Struct
    fingerprint: str


def _validate_attributes(doctype: DocumentType, raw: dict[str, Any]) -> msgspec.Struct:
    try:
        return doctype.validate(raw)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc, prefix="attributes")
        if "Object missing required field" in message:
            missing = message.split("`")[1] if "`" in message else ""
            field = ".".join(p for p in (field, missing) if p)
            message = "field is required"
        raise InvalidMetadata(f"{field}: {message}", field=field) from None


def fingerprint(metadata: DocumentMetadata, attributes: msgspec.Struct, sha256: str) -> str:
    """What makes two submissions "the same document": content, not delivery options."""
    canonical = msgspec.json.encode(
        {
            "type": metadata.type,
            "account_id": metadata.account_id,
            "title": metadata.title,
            "issued_at": metadata.issued_at,
            "attributes": msgspec.to_builtins(attributes),
            "sha256": sha256,
        },
        order="sorted",
    )
    return hashlib.sha256(canonical).hexdigest()


def response_for(doc: Doc) -> IngestResponse:
    return IngestResponse(
        id=doc["_id"],
        type=doc["type"],
        account_id=doc["account_id"],
        source_ref=doc["source_ref"],
        sha256=doc["blob"]["sha256"],
        size=doc["blob"]["size"],
        content_type=doc["blob"]["content_type"],
        created_at=doc["created_at"],
        delivery=doc["delivery"]["mode"],
        reason=doc["delivery"].get("reason"),
    )


def _notification_plan(
    delivery: DeliveryDecision, origin: Origin, notify: bool, now: dt.datetime
) -> dict[str, dict[str, Any]]:
    """Initial outbox state per channel: `pending` for what a worker must do."""

    def state(status: str, reason: str | None = None) -> dict[str, Any]:
        return {"status": status, "attempts": 0, "error": None, "reason": reason, "at": now}

    if not notify:
        why = "backfilled without --notify" if origin == "backfill" else "notify is false"
        return {"email": state("skipped", why), "realtime": state("skipped", why)}
    email = (
        state("pending")
        if delivery.mode == "digital"
        else state("skipped", f"delivery is print: {delivery.reason}")
    )
    return {"email": email, "realtime": state("pending")}


class IngestService:
    def __init__(
        self,
        registry: DocumentTypeRegistry,
        documents: DocumentStore,
        accounts: AccountStore,
        blobs: BlobStore,
        queue: NotificationQueue,
    ) -> None:
        self.registry = registry
        self.documents = documents
        self.accounts = accounts
        self.blobs = blobs
        self.queue = queue

    def check(self, metadata: DocumentMetadata, file: IncomingFile) -> Checked:
        """Every check that needs no I/O: type, attributes, file content. Raises on bad input."""
        doctype = self.registry.get(metadata.type)
        attributes = _validate_attributes(doctype, metadata.attributes)
        if file.size == 0:
            raise InvalidMetadata("file: the file is empty", field="file")
        if file.content_type not in doctype.content_types:
            accepted = ", ".join(sorted(doctype.content_types))
            raise UnsupportedContent(
                f"file: content is {file.content_type}, but {doctype.name} accepts {accepted}",
                field="file",
            )
        return Checked(doctype, attributes, fingerprint(metadata, attributes, file.sha256))

    async def accept(
        self,
        metadata: DocumentMetadata,
        file: IncomingFile,
        *,
        source: str,
        origin: Origin = "api",
        notify: bool | None = None,
        look_up_first: bool = False,
    ) -> IngestOutcome:
        """Store one document; an identical replay returns the stored one (created=False).

        Without `look_up_first` the unique index decides replays: the common case (a new
        document) then costs no extra query, and a replay costs one blob upload that is removed
        again. Callers that expect many replays (a resumed backfill) pass True.
        """
        checked = self.check(metadata, file)
        if look_up_first:
            existing = await self.documents.by_source_ref(source, metadata.source_ref)
            if existing is not None:
                return self._replay(existing, checked.fingerprint)

        should_notify = metadata.notify if notify is None else notify
        document_id = new_document_id()
        key = blob_key(document_id)
        # The blob upload and the account lookup are independent: overlap them.
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    self.blobs.put, key, file.data, file.size, file.content_type,
                    {"document-id": document_id},
                )
                account = await self.accounts.get(metadata.account_id)
        except BaseException:
            await self._remove_blob(key)
            raise
        delivery = decide_delivery(checked.doctype, metadata, account)
        now = utcnow()
        issued_at = metadata.issued_at or now
        document: Doc = {
            "_id": document_id,
            "type": metadata.type,
            "source": source,
            "source_ref": metadata.source_ref,
            "account_id": metadata.account_id,
            "title": metadata.title or checked.doctype.default_title(checked.attributes),
            "attributes": msgspec.to_builtins(checked.attributes),
            "summary": checked.doctype.summary(checked.attributes),
            "recipient": msgspec.to_builtins(metadata.recipient) if metadata.recipient else None,
            "issued_at": issued_at.astimezone(dt.UTC),
            "created_at": now,
            "blob": {
                "key": key,
                "size": file.size,
                "sha256": file.sha256,
                "content_type": file.content_type,
                "filename": file.filename,
            },
            "delivery": {
                "mode": delivery.mode,
                "reason": delivery.reason,
                "email": delivery.email,
                "locale": delivery.locale,
            },
            "origin": origin,
            "fingerprint": checked.fingerprint,
            "read_at": None,
            "archived_at": None,
            "first_downloaded_at": None,
            "notifications": _notification_plan(delivery, origin, should_notify, now),
            "retain_until": checked.doctype.retain_until(issued_at.astimezone(dt.UTC)),
        }

        try:
            await self.documents.insert(document)
        except DuplicateSourceRef:
            # Lost a race with an identical request: keep theirs, drop our blob.
            await self._remove_blob(key)
            winner = await self.documents.by_source_ref(source, metadata.source_ref)
            assert winner is not None
            return self._replay(winner, checked.fingerprint)
        except BaseException:
            await self._remove_blob(key)
            raise

        pending: list[Channel] = [
            ch for ch, state in document["notifications"].items() if state["status"] == "pending"
        ]
        await self.queue.enqueue(document_id, pending)
        log.info(
            "document.ingested",
            document_id=document_id,
            type=metadata.type,
            source=source,
            origin=origin,
            size=file.size,
            delivery=delivery.mode,
        )
        return IngestOutcome(True, response_for(document), document)

    def _replay(self, existing: Doc, fingerprint: str) -> IngestOutcome:
        if existing.get("fingerprint") != fingerprint:
            raise Conflict(
                f"source_ref {existing['source_ref']!r} was already used for a different document "
                f"(id {existing['_id']})",
                field="source_ref",
            )
        return IngestOutcome(False, response_for(existing), existing)

    async def _remove_blob(self, key: str) -> None:
        # Shielded: a cancelled request must still clean up what it wrote.
        with anyio.CancelScope(shield=True):
            try:
                await self.blobs.delete(key)
            except Exception as exc:  # the orphan sweep will retry
                log.warning("blob.cleanup_failed", key=key, error=str(exc))
