"""HTTP doors of signed evidence: the sender's, the operator's, and the public key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import (
    ApiKeyDep,
    CredentialStores,
    provide_admin_key,
    provide_any_key,
    provide_ingest_key,
)
from mailbox_service.evidence.schemas import PublicKey, SignedEvidence
from mailbox_service.evidence.service import EvidenceService
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import errors
from mailbox_service.storage.api_keys import ApiKey

NOT_CONFIGURED = "`MAILBOX_EVIDENCE_KEY_FILE` is not set on this server: no key to sign with."
GONE = "The document was purged (retention) or erased; the message says when and why."


@dataclass(frozen=True, slots=True)
class EvidenceServices:
    """What the evidence routes use, built once by the composition root (wiring/)."""

    evidence: EvidenceService
    audit: AuditTrail
    credentials: CredentialStores


EvidenceServicesDep = NamedDependency[EvidenceServices]


async def _issue(
    request: Request[Any, Any, Any],
    services: EvidenceServices,
    api_key: ApiKey,
    document_id: str,
    *,
    source: str | None,
) -> SignedEvidence:
    bundle, document = await services.evidence.issue(document_id, source=source)
    await record_key(
        request,
        services,
        api_key,
        "evidence.issued",
        account_id=document.get("account_id"),
        document_id=document_id,
        details={"key_id": bundle.key_id},
    )
    return bundle


class EvidenceController(Controller):
    path = "/v1"
    tags = ["evidence"]
    dependencies = {"services": provided(EvidenceServices)}

    @get(
        "/documents/{document_id:str}/evidence",
        operation_id="documentEvidence",
        dependencies={"api_key": Provide(provide_ingest_key)},
        security=[{"apiKey": ["ingest"]}],
        responses=errors(
            401,
            403,
            404,
            410,
            429,
            503,
            notes={
                404: "No such document, or one another source sent.",
                410: GONE,
                503: NOT_CONFIGURED,
            },
        ),
    )
    async def sender_evidence(
        self,
        request: Request[Any, Any, Any],
        services: EvidenceServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
    ) -> SignedEvidence:
        """Signed evidence of one document this key's source sent: the file's SHA-256, who
        sent it, the delivery decision, each notification outcome with the relay's reply,
        first read and download, holds."""
        return await _issue(request, services, api_key, document_id, source=api_key.source)

    @get(
        "/admin/documents/{document_id:str}/evidence",
        operation_id="adminDocumentEvidence",
        dependencies={"api_key": Provide(provide_admin_key)},
        security=[{"apiKey": ["admin"]}],
        responses=errors(401, 403, 404, 410, 429, 503, notes={410: GONE, 503: NOT_CONFIGURED}),
    )
    async def admin_evidence(
        self,
        request: Request[Any, Any, Any],
        services: EvidenceServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
    ) -> SignedEvidence:
        """Signed evidence of any document (the same bundle its sender gets)."""
        return await _issue(request, services, api_key, document_id, source=None)

    @get(
        "/evidence/public-key",
        operation_id="evidencePublicKey",
        dependencies={"api_key": Provide(provide_any_key)},
        security=[{"apiKey": []}],
        responses=errors(401, 429, 503, notes={503: NOT_CONFIGURED}),
    )
    async def public_key(self, services: EvidenceServicesDep, api_key: ApiKeyDep) -> PublicKey:
        """The public key that verifies evidence signatures (any API key may read it)."""
        return services.evidence.public_key()
