"""HTTP door of the audit trail: `GET /v1/admin/audit`, for API keys with `admin` scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from mailbox_service.audit import contract
from mailbox_service.audit.entry import AuditAction
from mailbox_service.audit.query import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_VALUE_LENGTH,
    AuditFilters,
    AuditQuery,
)
from mailbox_service.audit.schemas import AuditPage
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_admin_key
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import errors


@dataclass(frozen=True, slots=True)
class AuditServices:
    """What the audit route uses, built once by the composition root (wiring/)."""

    query: AuditQuery
    credentials: CredentialStores


AuditServicesDep = NamedDependency[AuditServices]


class AdminAuditController(Controller):
    path = "/v1/admin/audit"
    tags = ["admin"]
    dependencies = {"services": provided(AuditServices), "api_key": Provide(provide_admin_key)}
    security = [{"apiKey": ["admin"]}]

    @get(
        "/",
        operation_id="listAuditEntries",
        responses=errors(
            400,
            401,
            403,
            429,
            notes={400: "A filter, the limit or the cursor is malformed; `field` names it."},
        ),
        opt=contract.LIST,
    )
    async def list_entries(
        self,
        services: AuditServicesDep,
        api_key: ApiKeyDep,
        account_id: Annotated[
            str | None,
            Parameter(min_length=1, max_length=MAX_VALUE_LENGTH, description="Only this account."),
        ] = None,
        document_id: Annotated[
            str | None,
            Parameter(min_length=1, max_length=MAX_VALUE_LENGTH, description="Only this document."),
        ] = None,
        actor: Annotated[
            str | None,
            Parameter(
                min_length=1,
                max_length=MAX_VALUE_LENGTH,
                description="Only this actor: a token `sub`, an API key id, `operator` or "
                "`anonymous`.",
            ),
        ] = None,
        action: Annotated[AuditAction | None, Parameter(description="Only this action.")] = None,
        since: Annotated[
            str | None, Parameter(description="At or after (a date or an ISO 8601 time).")
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_LIMIT, description="Page size.")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor` of the previous page.")
        ] = None,
    ) -> AuditPage:
        """Audit entries, newest first, one page at a time."""
        filters = AuditFilters.parse(
            account_id=account_id,
            document_id=document_id,
            actor=actor,
            action=action,
            since=since,
        )
        return await services.query.page(filters, limit=limit, cursor=cursor)
