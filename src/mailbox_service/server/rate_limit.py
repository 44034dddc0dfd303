"""Rate limits in the HTTP API: which route spends which budget (see `ratelimit/budgets.py`).

- Routes whose handler resolves a credential provider (API key or portal user, marked with
  `@credential_provider` in `auth/providers.py`) spend the key's or the user's budget inside
  that provider, and refused credentials spend the client address's budget.
- Routes marked `opt={"rate_limit": EXEMPT}` spend nothing: the health probes orchestrators
  call every few seconds from one address must not be starved by a flood from it.
- Every other route is anonymous and spends the client address's budget (this guard).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mailbox_service.auth.providers import client_address, is_credential_provider
from mailbox_service.ratelimit import Budgets

EXEMPT = "exempt"
"""Value of the route option `rate_limit` for routes that spend no budget."""


def spends_own_budget(handler: BaseRouteHandler) -> bool:
    """True when the route authenticates (and so charges the key or user, not the address)."""
    return any(
        is_credential_provider(provide.dependency)
        for provide in handler.resolve_dependencies().values()
    )


async def limit_anonymous_routes(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """App-level guard: anonymous routes spend the client address's budget."""
    # resolve_dependencies() is memoized by Litestar: this is a walk over a few entries.
    if handler.opt.get("rate_limit") == EXEMPT or spends_own_budget(handler):
        return
    budgets: Budgets = connection.app.state.services.rate_limits
    await budgets.spend_anonymous(client_address(connection, budgets))
