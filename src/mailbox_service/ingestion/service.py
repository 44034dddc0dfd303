"""IngestService: the one pipeline every door (HTTP, backfill) goes through.

validate → (replay check) → blob to MinIO → metadata to MongoDB → enqueue notifications.
Blob first, then metadata: if the metadata write fails the blob is removed again, and the
orphan sweep covers a crash between the two. There is never metadata without a blob.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import anyio
import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidMetadata,
    MailboxError,
    UnsupportedContent,
)
from mailbox_service.ingestion.delivery import DeliveryDecision, decide_delivery
from mailbox_service.ingestion.schemas import DocumentMetadata, IngestResponse
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.log import get_logger
from mailbox_service.notifications.channels import Channel
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.observability import metrics
from mailbox_service.senders.reminder_due import initial_reminder
from mailbox_service.storage.accounts import Account, AccountStore
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.documents import (
    DocumentStore,
    DuplicateSourceRef,
    blob_key,
    new_document_id,
    source_key,
)
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.stored_document import (
    Blob,
    Delivery,
    StoredDocument,
    encode_document,
)
from mailbox_service.types import error_field

log = get_logger(__name__)

Origin = Literal["api", "backfill"]


@dataclass(frozen=True)
class IngestOutcome:
    """`created` is False for an identical replay (HTTP 200 instead of 201)."""

    created: bool
    response: IngestResponse
    stored: StoredDocument

    @property
    def document(self) -> Doc:
        """The stored record, untyped, for tools that hand it on as one (demo data, tests)."""
        return encode_document(self.stored)


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


def response_for(doc: StoredDocument) -> IngestResponse:
    return IngestResponse(
        id=doc.id,
        type=doc.type,
        account_id=doc.account_id,
        source_ref=doc.source_ref,
        sha256=doc.blob.sha256,
        size=doc.blob.size,
        content_type=doc.blob.content_type,
        created_at=doc.created_at,
        delivery=doc.delivery.mode,
        reason=doc.delivery.reason,
    )


def _unavailable(exc: BaseException) -> DependencyUnavailable:
    """A backing service failed for one item of a batch (the caller may retry it)."""
    return DependencyUnavailable(f"{type(exc).__name__}: {exc}")


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
        key_id: str | None = None,
        origin: Origin = "api",
        notify: bool | None = None,
        look_up_first: bool = False,
        announce: bool = True,
    ) -> IngestOutcome:
        """Store one document; an identical replay returns the stored one (created=False).

        Without `look_up_first` the unique index decides replays: the common case (a new
        document) then costs no extra query, and a replay costs one blob upload that is removed
        again. Callers that expect many replays (a resumed backfill) pass True.

        `key_id`: the API key that sent it, kept on the document as `ingest_key_id` for its
        evidence bundle (None for the backfill, which an operator runs without a key).

        With `announce=False` the caller queues the notifications of a created document itself,
        with `announce(outcome.document)`, once it has answered: the HTTP door does, so the
        sender does not wait for a Redis round trip whose outcome cannot change its answer (a
        failed enqueue only logs; the outbox sweep re-enqueues whatever stays `pending`).
        """
        checked = self.check(metadata, file)
        if look_up_first:
            existing = await self.documents.find_by_source_ref(source, metadata.source_ref)
            if existing is not None:
                return self._replay(existing, checked.fingerprint)

        should_notify = metadata.notify if notify is None else notify
        document_id = new_document_id()
        key = blob_key(document_id)
        versions: dict[str, str | None] = {}

        async def upload() -> None:
            versions[key] = await self.blobs.put(
                key, file.data, file.size, file.content_type, {"document-id": document_id}
            )

        # The blob upload and the account lookup are independent: overlap them.
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(upload)
                account = await self.accounts.get(metadata.account_id)
        except BaseException:
            await self._remove_blob(key)
            raise
        document = self._document(
            metadata,
            checked,
            file,
            document_id,
            source=source,
            origin=origin,
            notify=should_notify,
            account=account,
            key_id=key_id,
            version_id=versions.get(key),
        )

        try:
            await self.documents.insert(document)
        except DuplicateSourceRef:
            # Lost a race with an identical request: keep theirs, drop our blob.
            await self._remove_blob(key)
            winner = await self.documents.find_by_source_ref(source, metadata.source_ref)
            assert winner is not None
            return self._replay(winner, checked.fingerprint)
        except BaseException:
            await self._remove_blob(key)
            raise

        await self._lock_files([document])
        if announce:
            await self.announce(document)
        return self._created(document)

    def _document(
        self,
        metadata: DocumentMetadata,
        checked: Checked,
        file: IncomingFile,
        document_id: str,
        *,
        source: str,
        origin: Origin,
        notify: bool,
        account: Account | None,
        key_id: str | None = None,
        version_id: str | None = None,
    ) -> StoredDocument:
        """The stored form of a new document; `accept` and `accept_many` share it.

        `version_id`: the blob's S3 version (buckets with object locking are versioned): the
        purge then deletes exactly that version, many per request, instead of listing each
        key's versions first (lifecycle/retention.py)."""
        delivery = decide_delivery(checked.doctype, metadata, account)
        now = utcnow()
        issued_at = (metadata.issued_at or now).astimezone(dt.UTC)
        return StoredDocument(
            id=document_id,
            type=metadata.type,
            source=source,
            ingest_key_id=key_id,
            source_ref=metadata.source_ref,
            # The unique idempotency key (see storage/documents.py).
            source_key=source_key(source, metadata.source_ref),
            account_id=metadata.account_id,
            title=metadata.title or checked.doctype.default_title(checked.attributes),
            attributes=msgspec.to_builtins(checked.attributes),
            summary=checked.doctype.summary(checked.attributes),
            recipient=msgspec.to_builtins(metadata.recipient) if metadata.recipient else None,
            issued_at=issued_at,
            created_at=now,
            blob=Blob(
                key=blob_key(document_id),
                size=file.size,
                sha256=file.sha256,
                content_type=file.content_type,
                filename=file.filename,
                version_id=version_id or None,
            ),
            delivery=Delivery(
                mode=delivery.mode,
                reason=delivery.reason,
                email=delivery.email,
                locale=delivery.locale,
            ),
            origin=origin,
            fingerprint=checked.fingerprint,
            # Business status, changed by the sender (senders/status_updates.py).
            status=checked.doctype.initial_status,
            notifications=_notification_plan(delivery, origin, notify, now),
            # Only types with a due date are reminded (senders/reminders.py).
            reminder=initial_reminder(checked.doctype, checked.attributes),
            retain_until=checked.doctype.retain_until(issued_at),
        )

    async def announce(self, document: StoredDocument) -> None:
        """After the insert: queue the pending notifications and log the new document."""
        pending = [
            cast(Channel, ch)
            for ch, state in document.notifications.items()
            if state["status"] == "pending"
        ]
        await self.queue.enqueue(document.id, pending)
        metrics.document_ingested(document.type, document.delivery.mode, document.origin)
        log.info(
            "document.ingested",
            document_id=document.id,
            type=document.type,
            source=document.source,
            origin=document.origin,
            size=document.blob.size,
            delivery=document.delivery.mode,
        )

    def _created(self, document: StoredDocument) -> IngestOutcome:
        return IngestOutcome(True, response_for(document), document)

    async def accept_many(
        self,
        items: Sequence[tuple[DocumentMetadata, IncomingFile]],
        *,
        source: str,
        origin: Origin = "backfill",
        notify: bool | None = None,
        look_up_first: bool = False,
        uploads: anyio.CapacityLimiter | None = None,
    ) -> list[IngestOutcome | MailboxError]:
        """`accept` for a batch, for bulk doors (the backfill); same rules per document.

        Each item gets `check`, its blob before its metadata, and the unique (source,
        source_ref) decides replay (created=False) or Conflict, exactly as in `accept`. Only
        the I/O around that is batched: one lookup of the references (with `look_up_first`),
        one account read, the uploads in parallel (at most `uploads` at once), one
        insert_many. A reference that appears twice in the batch goes through `accept` after
        the batch, so it meets the first one as a replay.

        Returns one entry per item, in order: its outcome or the MailboxError it raised (a
        backing service failing for an item is DependencyUnavailable). Raises only while
        nothing has been written yet (the reference lookup or the account read failed).
        """
        results: list[IngestOutcome | MailboxError | None] = [None] * len(items)
        checked: dict[int, Checked] = {}
        first_of_ref: dict[str, int] = {}
        repeated: list[int] = []
        for index, (metadata, file) in enumerate(items):
            try:
                checked[index] = self.check(metadata, file)
            except MailboxError as exc:
                results[index] = exc
                continue
            if metadata.source_ref in first_of_ref:
                repeated.append(index)
            else:
                first_of_ref[metadata.source_ref] = index

        fresh = list(first_of_ref.values())
        if look_up_first and fresh:
            stored = await self.documents.find_by_source_refs(
                source, [items[i][0].source_ref for i in fresh]
            )
            for index in fresh:
                if (existing := stored.get(items[index][0].source_ref)) is not None:
                    results[index] = self._replay_or_error(existing, checked[index].fingerprint)
            fresh = [i for i in fresh if results[i] is None]

        if fresh:
            await self._store_batch(
                items,
                checked,
                fresh,
                results,
                source=source,
                origin=origin,
                notify=notify,
                uploads=uploads or anyio.CapacityLimiter(8),
            )
        for index in repeated:
            metadata, file = items[index]
            try:
                results[index] = await self.accept(
                    metadata,
                    file,
                    source=source,
                    origin=origin,
                    notify=notify,
                    look_up_first=True,
                )
            except MailboxError as exc:
                results[index] = exc
            except Exception as exc:
                results[index] = _unavailable(exc)
        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    async def _store_batch(
        self,
        items: Sequence[tuple[DocumentMetadata, IncomingFile]],
        checked: dict[int, Checked],
        fresh: list[int],
        results: list[IngestOutcome | MailboxError | None],
        *,
        source: str,
        origin: Origin,
        notify: bool | None,
        uploads: anyio.CapacityLimiter,
    ) -> None:
        """Blobs first (in parallel), then one insert_many; settle every item in `results`."""
        ids = {index: new_document_id() for index in fresh}
        uploaded: list[int] = []
        versions: dict[int, str | None] = {}

        async def upload(index: int) -> None:
            file = items[index][1]
            async with uploads:
                try:
                    versions[index] = await self.blobs.put(
                        blob_key(ids[index]),
                        file.data,
                        file.size,
                        file.content_type,
                        {"document-id": ids[index]},
                    )
                except Exception as exc:
                    results[index] = _unavailable(exc)
                    return
            uploaded.append(index)

        accounts: dict[str, Account] = {}
        try:
            async with anyio.create_task_group() as tg:
                for index in fresh:
                    tg.start_soon(upload, index)
                # Independent of the uploads, as in `accept`: overlap them.
                accounts = await self.accounts.get_many(
                    sorted({items[i][0].account_id for i in fresh})
                )
        except BaseException:
            await self._remove_blobs([blob_key(ids[i]) for i in uploaded])
            raise

        documents: dict[int, StoredDocument] = {}
        for index in sorted(uploaded):
            metadata, file = items[index]
            documents[index] = self._document(
                metadata,
                checked[index],
                file,
                ids[index],
                source=source,
                origin=origin,
                notify=metadata.notify if notify is None else notify,
                account=accounts.get(metadata.account_id),
                version_id=versions.get(index),
            )
        if not documents:
            return
        order = list(documents)
        refused: dict[int, dict[str, Any]] = {}
        try:
            errors = await self.documents.insert_many([documents[i] for i in order])
            refused = {order[position]: error for position, error in errors.items()}
        except BaseException as exc:
            # The server may have stored some before failing: keep the blobs of those.
            stored = await self._settle_unknown(documents)
            if not isinstance(exc, Exception):
                raise
            for index in order:
                if index not in stored:
                    results[index] = _unavailable(exc)
            refused = {i: {} for i in order if i not in stored}
            order = [i for i in order if i in stored]

        await self._remove_blobs([documents[i].blob.key for i in refused if refused[i]])
        await self._lock_files([documents[i] for i in order if i not in refused])
        duplicates = [i for i, error in refused.items() if error.get("code") == 11000]
        for index, error in refused.items():
            if error and error.get("code") != 11000:
                results[index] = DependencyUnavailable(
                    f"mongodb: insert failed: {error.get('errmsg', error)}"
                )
        if duplicates:
            # Lost to a stored document with the same reference: replay or conflict.
            try:
                winners = await self.documents.find_by_source_refs(
                    source, [items[i][0].source_ref for i in duplicates]
                )
            except Exception as exc:
                winners = {}
                for index in duplicates:
                    results[index] = _unavailable(exc)
            for index in duplicates:
                if (winner := winners.get(items[index][0].source_ref)) is not None:
                    results[index] = self._replay_or_error(winner, checked[index].fingerprint)
                elif results[index] is None:
                    results[index] = DependencyUnavailable(
                        "mongodb: duplicate reference but no stored document found; try again"
                    )
        for index in order:
            if index not in refused:
                await self.announce(documents[index])
                results[index] = self._created(documents[index])

    async def _settle_unknown(self, documents: dict[int, StoredDocument]) -> set[int]:
        """After an insert_many that failed midway: which items are stored. Blobs of the
        others are removed; if even that cannot be told, every blob stays for the sweep."""
        with anyio.CancelScope(shield=True):
            try:
                found = await self.documents.stored_ids([d.id for d in documents.values()])
            except Exception as exc:
                log.warning("batch.settle_failed", error=f"{type(exc).__name__}: {exc}")
                return set()
            await self._remove_blobs([d.blob.key for d in documents.values() if d.id not in found])
        return {i for i, d in documents.items() if d.id in found}

    def _replay_or_error(
        self, existing: StoredDocument, fingerprint: str
    ) -> IngestOutcome | MailboxError:
        try:
            return self._replay(existing, fingerprint)
        except Conflict as exc:
            return exc

    async def _remove_blobs(self, keys: list[str]) -> None:
        if not keys:
            return
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for key in keys:
                    tg.start_soon(self._remove_blob, key)

    def _replay(self, existing: StoredDocument, fingerprint: str) -> IngestOutcome:
        if existing.fingerprint != fingerprint:
            raise Conflict(
                f"source_ref {existing.source_ref!r} was already used for a different document "
                f"(id {existing.id})",
                field="source_ref",
            )
        return IngestOutcome(False, response_for(existing), existing)

    async def _lock_files(self, documents: list[StoredDocument]) -> None:
        """Write-once files get their S3 retention only now that their metadata is stored: a
        blob locked before that could not be removed when the insert fails (a replay race, a
        conflict, MongoDB down) and would stay an undeletable orphan until `retain_until`."""
        # A lock needs an end: a document without `retain_until` has nothing to lock until.
        locked = [
            (d.blob.key, d.retain_until, d.id)
            for d in documents
            if self.registry.get(d.type).immutable_files and d.retain_until is not None
        ]
        if not locked or not await self.blobs.object_lock_enabled():
            return
        for key, until, document_id in locked:
            try:
                await self.blobs.lock(key, until)
            except Exception as exc:  # the document is stored; say loudly that its file is not
                log.error("blob.lock_failed", document_id=document_id, error=str(exc))

    async def _remove_blob(self, key: str) -> None:
        # Shielded: a cancelled request must still clean up what it wrote.
        with anyio.CancelScope(shield=True):
            try:
                await self.blobs.delete(key)
            except Exception as exc:  # the orphan sweep will retry
                log.warning("blob.cleanup_failed", key=key, error=str(exc))
