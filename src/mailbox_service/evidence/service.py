"""EvidenceService: find the document (or its tombstone), build its bundle, sign it."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from functools import cached_property

import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.errors import Gone, NotConfigured, NotFound
from mailbox_service.evidence.bundle import build_evidence
from mailbox_service.evidence.canonical import canonical_json, rfc3339
from mailbox_service.evidence.keys import ALGORITHM, KEY_SETTING, EvidenceSigner
from mailbox_service.evidence.schemas import PublicKey, SignedEvidence
from mailbox_service.settings import EvidenceSettings
from mailbox_service.storage.documents import DocumentStore
from mailbox_service.storage.holds import HoldStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.tombstones import TombstoneStore

WHY_GONE = {
    "retention": "its retention period ended",
    "erased": "its account was erased",
}


class EvidenceKey:
    """The configured signing key, read on first use (the worker and the CLI never need it).

    A key file that is set but unreadable or malformed is a ConfigurationError: the API checks
    it at start-up (`check`) so a broken key stops the service instead of every request."""

    def __init__(self, settings: EvidenceSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.key_file)

    @cached_property
    def _signer(self) -> EvidenceSigner:
        return EvidenceSigner.from_file(self.settings.key_file)

    def signer(self) -> EvidenceSigner:
        if not self.configured:
            raise NotConfigured(
                f"signed evidence is not available: {KEY_SETTING} is not set on this server "
                "(the operator makes a key with `mailbox-service evidence keygen PATH`)"
            )
        return self._signer

    def check(self) -> None:
        if self.configured:
            self.signer()


def gone_message(tombstone: Doc) -> str:
    reason = tombstone.get("reason") or "unknown"
    why = WHY_GONE.get(reason, reason)
    at = tombstone.get("purged_at")
    when = rfc3339(at) if isinstance(at, dt.datetime) else "an unrecorded time"
    message = f"document {tombstone['_id']} was deleted at {when}: {why} (reason: {reason})"
    retain_until = tombstone.get("retain_until")
    if reason == "retention" and isinstance(retain_until, dt.datetime):
        message += f"; it was to be kept until {rfc3339(retain_until)}"
    return message


class EvidenceService:
    def __init__(
        self,
        documents: DocumentStore,
        holds: HoldStore,
        tombstones: TombstoneStore,
        key: EvidenceKey,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.documents = documents
        self.holds = holds
        self.tombstones = tombstones
        self.key = key
        self.clock = clock

    async def issue(self, document_id: str, *, source: str | None) -> tuple[SignedEvidence, Doc]:
        """The signed bundle of a document and the document itself.

        `source`: the sender asking (only its own documents exist for it: another source's
        document, live or gone, is 404); None for an operator, who sees every document.
        A document deleted on purpose (a tombstone) is 410 with when and why.
        """
        signer = self.key.signer()  # 503 before any lookup: nothing to sign with
        document = await self.documents.record(document_id)
        if document is None or (source is not None and document.get("source") != source):
            tombstone = await self.tombstones.get(document_id)
            if tombstone is not None and (source is None or tombstone.get("source") == source):
                raise Gone(gone_message(tombstone))
            raise NotFound(f"no document {document_id!r}")
        holds = await self.holds.for_document(document)
        evidence = build_evidence(document, holds, key_id=signer.key_id, generated_at=self.clock())
        signed = canonical_json(evidence)
        bundle = SignedEvidence(
            evidence=msgspec.json.decode(signed),
            signed=base64.b64encode(signed).decode(),
            signature=base64.b64encode(signer.sign(signed)).decode(),
            key_id=signer.key_id,
            algorithm=ALGORITHM,
        )
        return bundle, document

    def public_key(self) -> PublicKey:
        signer = self.key.signer()
        return PublicKey(
            key_id=signer.key_id,
            algorithm=ALGORITHM,
            public_key=base64.b64encode(signer.public_raw).decode(),
            public_key_pem=signer.public_pem,
        )
