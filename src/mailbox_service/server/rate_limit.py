"""Rate limits in the HTTP API: which route spends which budget (see `ratelimit/budgets.py`).

- Routes whose handler resolves a credential provider (API key or portal user, marked with
  `@credential_provider`) spend the key's or the user's budget inside that provider, and
  refused credentials spend the client address's budget.
- Routes marked `opt={"rate_limit": EXEMPT}` spend nothing: the health probes orchestrators
  call every few seconds from one address must not be starved by a flood from it.
- Every other route is anonymous and spends the client address's budget (this guard).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from mailbox_service.ratelimit import Budgets

EXEMPT = "exempt"
"""Value of the route option `rate_limit` for routes that spend no budget."""

_Provider = TypeVar("_Provider", bound=Callable[..., Any])
_CREDENTIAL_PROVIDERS: set[Callable[..., Any]] = set()


def credential_provider(provider: _Provider) -> _Provider:
    """Mark a dependency that checks credentials and spends their budget itself."""
    _CREDENTIAL_PROVIDERS.add(provider)
    return provider


def client_address(connection: ASGIConnection[Any, Any, Any, Any], budgets: Budgets) -> str:
    peer = connection.client.host if connection.client else None
    return budgets.addresses.of(peer, connection.headers.get("x-forwarded-for"))


def spends_own_budget(handler: BaseRouteHandler) -> bool:
    """True when the route authenticates (and so charges the key or user, not the address)."""
    return any(
        provide.dependency in _CREDENTIAL_PROVIDERS
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
