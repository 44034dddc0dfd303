"""HTTP door of the sender's side: status API, status updates and the change feed.

    GET   /v1/documents/{document_id}        what happened to one document
    GET   /v1/documents?source_ref=REF       the same, found by the sender's reference
    PATCH /v1/documents/{document_id}        set its business status
    PATCH /v1/documents?source_ref=REF       the same, by reference
    GET   /v1/documents/changes?since=C      every event of the source's documents after C

All with an ingest key; a key sees only its own source's documents: any other answers 404,
exactly as a missing one. `/v1/documents/changes` is a static path, which Litestar matches
before the `{document_id}` parameter (a test holds it to that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency, Provide
from litestar.params import Body, FromPath, Parameter
from litestar.status_codes import HTTP_200_OK

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_ingest_key
from mailbox_service.errors import BadRequest
from mailbox_service.senders import contract
from mailbox_service.senders.feed import DEFAULT_LIMIT, MAX_LIMIT, ChangeFeed, ChangePage
from mailbox_service.senders.lookup import SenderDocuments
from mailbox_service.senders.status import (
    STATUS_PROJECTION,
    DocumentStatus,
    DocumentStatusList,
    status_of,
)
from mailbox_service.senders.status_updates import (
    Applied,
    StatusUpdateResult,
    StatusUpdates,
    decode_update,
)
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import errors
from mailbox_service.storage.api_keys import ApiKey

_SOURCE_REF = re.compile(contract.SOURCE_REF_PATTERN)
NOT_OURS = "No such document, or one another source sent."
STATUS_422 = (
    "`status` is not one of the document type's statuses (the message lists them), the type "
    "has none, or `status_at` lacks an offset or is more than 10 minutes ahead."
)
UPDATE_BODY = Body(description='`{"status": "paid", "status_at": "2026-11-30T08:15:00Z"}`.')


@dataclass(frozen=True, slots=True)
class SenderServices:
    """What the senders' status routes use, built once by the composition root (wiring/)."""

    documents: SenderDocuments
    updates: StatusUpdates
    feed: ChangeFeed
    audit: AuditTrail
    credentials: CredentialStores


SenderServicesDep = NamedDependency[SenderServices]


def _checked_ref(source_ref: str | None) -> str:
    # Checked here, not by Litestar: its answer to a missing parameter names no field.
    if (
        source_ref is None
        or not (1 <= len(source_ref) <= contract.MAX_SOURCE_REF)
        or not _SOURCE_REF.match(source_ref)
    ):
        raise BadRequest(
            f"source_ref: 1-{contract.MAX_SOURCE_REF} printable ASCII characters, no spaces",
            field="source_ref",
        )
    return source_ref


async def _update(
    request: Request[Any, Any, Any],
    services: SenderServices,
    api_key: ApiKey,
    document: dict[str, Any],
    body: Any,
) -> StatusUpdateResult:
    update = decode_update(body)
    applied: Applied = await services.updates.apply(document, update)
    if applied.outcome == "changed":
        await record_key(
            request,
            services,
            api_key,
            "document.status_changed",
            account_id=document["account_id"],
            document_id=document["_id"],
            details={
                "status": update.status,
                "previous": applied.previous,
                "status_at": update.status_at.isoformat(),
            },
        )
    return StatusUpdateResult(outcome=applied.outcome, document=status_of(applied.document))


class SenderDocumentsController(Controller):
    path = "/v1/documents"
    tags = ["senders"]
    dependencies = {"services": provided(SenderServices), "api_key": Provide(provide_ingest_key)}
    security = [{"apiKey": ["ingest"]}]

    @get(
        "/changes",
        operation_id="listDocumentChanges",
        responses=errors(400, 401, 403, 429, 503, notes={400: "`since` or `limit` is invalid."}),
        opt=contract.CHANGES,
    )
    async def changes(
        self,
        services: SenderServicesDep,
        api_key: ApiKeyDep,
        since: Annotated[
            str | None,
            Parameter(description="`next` of the previous page (none: from the beginning)."),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_LIMIT, description="Most events in one page.")
        ] = DEFAULT_LIMIT,
    ) -> ChangePage:
        """Every event of this source's documents after `since`, oldest first. Events show
        up about two seconds after they happen; keep `next` and poll again from it."""
        return await services.feed.page(api_key.source, since, limit)

    @get(
        "/",
        operation_id="findDocumentStatus",
        responses=errors(
            400, 401, 403, 429, 503, notes={400: "`source_ref` is missing or malformed."}
        ),
        opt=contract.FIND,
    )
    async def find(
        self,
        services: SenderServicesDep,
        api_key: ApiKeyDep,
        source_ref: Annotated[
            str | None, Parameter(description="The reference you sent it with.")
        ] = None,
    ) -> DocumentStatusList:
        """The status of this source's document with `source_ref`: `items` holds it, or is
        empty when this source sent no such document."""
        found = await services.documents.find(
            api_key.source, _checked_ref(source_ref), STATUS_PROJECTION
        )
        return DocumentStatusList(items=[status_of(found)] if found is not None else [])

    @get(
        "/{document_id:str}",
        operation_id="getDocumentStatus",
        responses=errors(401, 403, 404, 429, 503, notes={404: NOT_OURS}),
    )
    async def get_status(
        self, services: SenderServicesDep, api_key: ApiKeyDep, document_id: FromPath[str]
    ) -> DocumentStatus:
        """What happened to one document this source sent: delivery and its changes, each
        notification channel, first read and download, business status. Never who read it."""
        found = await services.documents.get(api_key.source, document_id, STATUS_PROJECTION)
        return status_of(found)

    @patch(
        "/{document_id:str}",
        operation_id="updateDocumentStatus",
        status_code=HTTP_200_OK,
        responses=errors(
            400, 401, 403, 404, 413, 422, 429, 503, notes={404: NOT_OURS, 422: STATUS_422}
        ),
        opt=contract.UPDATE,
    )
    async def update_status(
        self,
        request: Request[Any, Any, Any],
        services: SenderServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
        data: Annotated[dict[str, Any], UPDATE_BODY],
    ) -> StatusUpdateResult:
        """Set the business status (e.g. an invoice `paid`). Idempotent; an update whose
        `status_at` is not later than the stored one changes nothing (`outcome: stale`)."""
        document = await services.documents.get(api_key.source, document_id)
        return await _update(request, services, api_key, document, data)

    @patch(
        "/",
        operation_id="updateDocumentStatusBySourceRef",
        status_code=HTTP_200_OK,
        responses=errors(
            400, 401, 403, 404, 413, 422, 429, 503, notes={404: NOT_OURS, 422: STATUS_422}
        ),
        opt=contract.UPDATE_BY_REF,
    )
    async def update_status_by_ref(
        self,
        request: Request[Any, Any, Any],
        services: SenderServicesDep,
        api_key: ApiKeyDep,
        data: Annotated[dict[str, Any], UPDATE_BODY],
        source_ref: Annotated[
            str | None, Parameter(description="The reference you sent it with.")
        ] = None,
    ) -> StatusUpdateResult:
        """`updateDocumentStatus` for the document this source sent with `source_ref`."""
        document = await services.documents.get_by_ref(api_key.source, _checked_ref(source_ref))
        return await _update(request, services, api_key, document, data)
