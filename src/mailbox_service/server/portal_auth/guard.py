"""The Litestar dependency that turns `Authorization: Bearer <JWT>` into a PortalUser."""

from __future__ import annotations

from typing import Any

from litestar import Request

from mailbox_service.server.auth import bearer_token
from mailbox_service.server.deps import ServicesDep
from mailbox_service.server.portal_auth.tokens import PortalUser


async def provide_portal_user(request: Request[Any, Any, Any], services: ServicesDep) -> PortalUser:
    return await services.portal_tokens.verify(bearer_token(request))
