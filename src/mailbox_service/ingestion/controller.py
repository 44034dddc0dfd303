"""HTTP door of the ingest pipeline: `POST /v1/documents` and `GET /v1/document-types`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency, Provide
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from mailbox_service.auth.providers import (
    ApiKeyDep,
    CredentialStores,
    provide_any_key,
    provide_ingest_key,
)
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import Forbidden, PayloadTooLarge
from mailbox_service.ingestion.contract import ingest_request_body
from mailbox_service.ingestion.multipart import read_upload
from mailbox_service.ingestion.schemas import (
    DocumentTypeInfo,
    DocumentTypeList,
    IngestResponse,
    decode_metadata,
)
from mailbox_service.ingestion.service import IngestService
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import documented, errors, response
from mailbox_service.settings import Settings

# Multipart framing and the metadata part come on top of the file itself.
ENVELOPE_ALLOWANCE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class IngestServices:
    """What the ingest door uses, built once by the composition root (wiring/)."""

    ingest: IngestService
    registry: DocumentTypeRegistry
    settings: Settings
    credentials: CredentialStores


IngestServicesDep = NamedDependency[IngestServices]


class IngestionController(Controller):
    path = "/v1"
    tags = ["ingestion"]
    dependencies = {"services": provided(IngestServices)}

    @post(
        "/documents",
        operation_id="ingestDocument",
        dependencies={"api_key": Provide(provide_ingest_key)},
        request_max_body_size=None,
        status_code=HTTP_201_CREATED,
        security=[{"apiKey": ["ingest"]}],
        responses={
            200: response(
                "Identical replay of (source, source_ref): nothing new stored.", IngestResponse
            ),
            **errors(
                400,
                401,
                403,
                409,
                413,
                415,
                422,
                429,
                503,
                notes={
                    403: "The key lacks the `ingest` scope, or may not send to this account.",
                    409: "Same `source_ref` from this source, other content.",
                },
            ),
        },
        opt=documented(request_body=ingest_request_body),
    )
    async def ingest(
        self, request: Request[Any, Any, Any], services: IngestServicesDep, api_key: ApiKeyDep
    ) -> Response[IngestResponse]:
        """Store a new document (multipart parts `metadata` and `file`).

        201 when stored, 200 for an identical replay of (source, source_ref).
        """
        limits = services.settings.limits
        declared = request.headers.get("content-length")
        budget = limits.max_upload_bytes + limits.max_metadata_bytes + ENVELOPE_ALLOWANCE
        if declared and declared.isdigit() and int(declared) > budget:
            raise PayloadTooLarge(
                f"request body is larger than the maximum of {limits.max_upload_bytes} bytes",
                field="file",
            )
        upload = await read_upload(
            request.stream(),
            request.headers.get("content-type", ""),
            max_file=limits.max_upload_bytes,
            max_metadata=limits.max_metadata_bytes,
        )
        try:
            metadata = decode_metadata(upload.metadata, max_bytes=limits.max_metadata_bytes)
            # Before the account is read: the answer must not depend on its existence or consent.
            if not api_key.may_send_to(metadata.account_id):
                raise Forbidden(
                    "this API key may not send documents to this account", field="account_id"
                )
            outcome = await services.ingest.accept(
                metadata,
                upload.file,
                source=api_key.source,
                key_id=api_key.key_id,
                announce=False,
            )
        finally:
            upload.file.close()
        # The notifications are queued once the answer is sent (still after the insert): the
        # sender does not wait for Redis, and a lost enqueue is the outbox sweep's to repeat.
        return Response(
            outcome.response,
            status_code=HTTP_201_CREATED if outcome.created else HTTP_200_OK,
            background=(
                BackgroundTask(services.ingest.announce, outcome.stored)
                if outcome.created
                else None
            ),
        )

    @get(
        "/document-types",
        operation_id="listDocumentTypes",
        dependencies={"api_key": Provide(provide_any_key)},
        security=[{"apiKey": []}],
        responses=errors(401, 429),
    )
    async def document_types(
        self, services: IngestServicesDep, api_key: ApiKeyDep
    ) -> DocumentTypeList:
        """Every registered document type with the JSON Schema of its attributes."""
        return DocumentTypeList(
            items=[
                DocumentTypeInfo(
                    name=t.name,
                    label=t.label,
                    digital=t.digital,
                    retention_days=t.retention.days,
                    content_types=sorted(t.content_types),
                    attributes_schema=t.json_schema(),
                    statuses=sorted(t.statuses),
                    initial_status=t.initial_status,
                )
                for t in services.registry
            ]
        )
