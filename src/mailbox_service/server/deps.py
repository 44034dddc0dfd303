"""Names of the dependencies handlers receive, declared explicitly (Litestar 3 requires it)."""

from __future__ import annotations

from litestar.di import NamedDependency

from mailbox_service.server.portal_auth.tokens import PortalUser
from mailbox_service.server.services import Services
from mailbox_service.storage.api_keys import ApiKey

ServicesDep = NamedDependency[Services]
ApiKeyDep = NamedDependency[ApiKey]
PortalUserDep = NamedDependency[PortalUser]
