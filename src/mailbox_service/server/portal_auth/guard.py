"""The Litestar dependency that turns `Authorization: Bearer <JWT>` into a PortalUser."""

from __future__ import annotations

from typing import Any

from litestar import Request

from mailbox_service.audit.http import PORTAL_USER_STATE
from mailbox_service.server.auth import bearer_token
from mailbox_service.server.deps import ServicesDep
from mailbox_service.server.portal_auth.tokens import PortalUser
from mailbox_service.server.rate_limit import client_address, credential_provider


@credential_provider
async def provide_portal_user(request: Request[Any, Any, Any], services: ServicesDep) -> PortalUser:
    budgets = services.rate_limits
    async with budgets.checking_credentials(client_address(request, budgets)):
        user = await services.portal_tokens.verify(bearer_token(request))
    # For the error handler: a 404 to this caller counts toward their intrusion alert.
    request.state[PORTAL_USER_STATE] = user
    await budgets.spend_portal_user(user.sub)
    return user
