"""The Litestar dependency that turns `Authorization: Bearer <JWT>` into a PortalUser."""

from __future__ import annotations

from typing import Any

from litestar import Request

from mailbox_service.server.auth import bearer_token
from mailbox_service.server.portal_auth.tokens import PortalUser
from mailbox_service.server.services import Services


async def provide_portal_user(request: Request[Any, Any, Any], services: Services) -> PortalUser:
    return await services.portal_tokens.verify(bearer_token(request))
