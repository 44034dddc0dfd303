"""API-key authentication for output-management systems and operators."""

from __future__ import annotations

from typing import Any

from litestar import Request

from mailbox_service.errors import Forbidden, Unauthenticated
from mailbox_service.server.deps import ServicesDep
from mailbox_service.server.rate_limit import client_address, credential_provider
from mailbox_service.server.services import Services
from mailbox_service.storage.api_keys import ApiKey


def bearer_token(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer credentials in the Authorization header")
    return token.strip()


async def _known_key(request: Request[Any, Any, Any], services: Services) -> ApiKey:
    budgets = services.rate_limits
    async with budgets.checking_credentials(client_address(request, budgets)):
        key = await services.api_keys.authenticate(bearer_token(request))
        if key is None:
            raise Unauthenticated("unknown or revoked API key")
    await budgets.spend_api_key(key.key_id)
    return key


async def _key_with_scope(
    request: Request[Any, Any, Any], services: Services, scope: str
) -> ApiKey:
    key = await _known_key(request, services)
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    return key


@credential_provider
async def provide_ingest_key(request: Request[Any, Any, Any], services: ServicesDep) -> ApiKey:
    return await _key_with_scope(request, services, "ingest")


@credential_provider
async def provide_admin_key(request: Request[Any, Any, Any], services: ServicesDep) -> ApiKey:
    return await _key_with_scope(request, services, "admin")


@credential_provider
async def provide_any_key(request: Request[Any, Any, Any], services: ServicesDep) -> ApiKey:
    return await _known_key(request, services)
