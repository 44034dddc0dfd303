"""HTTP door of legal holds: `/v1/admin/holds`, for API keys with `admin` scope.

POST sets a hold on a document or an account (with a reason), DELETE lifts it, GET lists every
hold. What a hold does: storage/holds.py and lifecycle/legal_holds.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import Body, FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_admin_key
from mailbox_service.errors import InvalidMetadata
from mailbox_service.lifecycle.legal_holds import LegalHolds
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import documented, errors
from mailbox_service.storage.holds import Hold
from mailbox_service.untrusted import NOT_BLANK

MAX_REASON = 500
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
_ID = msgspec.Meta(min_length=1, max_length=64, pattern=ID_PATTERN)
_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": ID_PATTERN}
DOCUMENT_ROUTE = documented(parameters={"document_id": _ID_SCHEMA})
ACCOUNT_ROUTE = documented(parameters={"account_id": _ID_SCHEMA})


@dataclass(frozen=True, slots=True)
class HoldServices:
    """What the legal-hold routes use, built once by the composition root (wiring/)."""

    holds: LegalHolds
    audit: AuditTrail
    credentials: CredentialStores


HoldServicesDep = NamedDependency[HoldServices]


class HoldRequest(msgspec.Struct):
    # Some text that is not whitespace by Python's rule (the check below) or the schema
    # tools' rule, so the schema and the answer agree (untrusted.NOT_BLANK).
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON, pattern=NOT_BLANK)]
    """Why the hold is set: a case number, a request."""


class HoldList(msgspec.Struct):
    items: list[Hold]


def _checked_id(value: str, field: str) -> str:
    try:
        checked: str = msgspec.convert(value, Annotated[str, _ID])
        return checked
    except msgspec.ValidationError:
        raise InvalidMetadata(
            f"{field}: 1-64 characters, letters, digits and . _ : - (got {value[:80]!r})",
            field=field,
        ) from None


def _reason(body: HoldRequest) -> str:
    if not body.reason.strip():
        raise InvalidMetadata("reason: must not be blank", field="reason")
    return body.reason.strip()


class AdminHoldsController(Controller):
    path = "/v1/admin/holds"
    tags = ["admin"]
    dependencies = {"services": provided(HoldServices), "api_key": Provide(provide_admin_key)}
    security = [{"apiKey": ["admin"]}]

    @get("/", operation_id="listHolds", responses=errors(401, 403, 429))
    async def list_holds(self, services: HoldServicesDep, api_key: ApiKeyDep) -> HoldList:
        """Every legal hold: account holds first, then document holds, each oldest first."""
        return HoldList(await services.holds.all())

    @post(
        "/documents/{document_id:str}",
        operation_id="holdDocument",
        status_code=HTTP_201_CREATED,
        responses=errors(400, 401, 403, 404, 422, 429, 503),
        opt=DOCUMENT_ROUTE,
    )
    async def hold_document(
        self,
        request: Request[Any, Any, Any],
        services: HoldServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
        data: Annotated[HoldRequest, Body(description='Why: `{"reason": "case 17"}`.')],
    ) -> Hold:
        """Hold one document: purge and erasure keep it, its write-once file gets an S3
        legal hold. Setting it again replaces the reason. 404: no such document."""
        document_id = _checked_id(document_id, "document_id")
        hold = await services.holds.hold_document(
            document_id, _reason(data), f"admin key {api_key.key_id}"
        )
        await record_key(
            request,
            services,
            api_key,
            "hold.set",
            account_id=hold.account_id,
            document_id=document_id,
            details={"scope": "document", "reason": hold.reason},
        )
        return hold

    @post(
        "/accounts/{account_id:str}",
        operation_id="holdAccount",
        status_code=HTTP_201_CREATED,
        responses=errors(400, 401, 403, 422, 429, 503),
        opt=ACCOUNT_ROUTE,
    )
    async def hold_account(
        self,
        request: Request[Any, Any, Any],
        services: HoldServicesDep,
        api_key: ApiKeyDep,
        account_id: FromPath[str],
        data: Annotated[HoldRequest, Body(description='Why: `{"reason": "case 17"}`.')],
    ) -> Hold:
        """Hold every document of an account, present and future."""
        account_id = _checked_id(account_id, "account_id")
        hold = await services.holds.hold_account(
            account_id, _reason(data), f"admin key {api_key.key_id}"
        )
        await record_key(
            request,
            services,
            api_key,
            "hold.set",
            account_id=account_id,
            details={"scope": "account", "reason": hold.reason},
        )
        return hold

    @delete(
        "/documents/{document_id:str}",
        operation_id="releaseDocumentHold",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 422, 429, 503),
        opt=DOCUMENT_ROUTE,
    )
    async def release_document(
        self,
        request: Request[Any, Any, Any],
        services: HoldServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
    ) -> Hold:
        """Lift a document's own hold (an account hold still covers it). 404: no hold."""
        document_id = _checked_id(document_id, "document_id")
        hold = await services.holds.release_document(document_id)
        await record_key(
            request,
            services,
            api_key,
            "hold.released",
            account_id=hold.account_id,
            document_id=document_id,
            details={"scope": "document", "reason": hold.reason},
        )
        return hold

    @delete(
        "/accounts/{account_id:str}",
        operation_id="releaseAccountHold",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 422, 429, 503),
        opt=ACCOUNT_ROUTE,
    )
    async def release_account(
        self,
        request: Request[Any, Any, Any],
        services: HoldServicesDep,
        api_key: ApiKeyDep,
        account_id: FromPath[str],
    ) -> Hold:
        """Lift an account hold. 404: the account has none."""
        account_id = _checked_id(account_id, "account_id")
        hold = await services.holds.release_account(account_id)
        await record_key(
            request,
            services,
            api_key,
            "hold.released",
            account_id=account_id,
            details={"scope": "account", "reason": hold.reason},
        )
        return hold
