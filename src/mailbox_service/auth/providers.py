"""The Litestar dependencies that authenticate a request: API keys and portal JWTs.

Each provider reads what it checks credentials with from the controller's own dependency
(`services.credentials`, see `Authenticated`) and spends the caller's rate budget itself;
`server/rate_limit.py` knows them by the `credential_provider` mark and leaves their routes to
them. Going through the controller's dependency keeps the resolution a chain (services, then
the credential): Litestar runs dependencies that wait on nothing as a batch in a task group,
a cost on every request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency

from mailbox_service.auth.tokens import PortalUser, TokenVerifier
from mailbox_service.errors import Forbidden, Unauthenticated
from mailbox_service.ratelimit import Budgets
from mailbox_service.storage.api_keys import ApiKey, ApiKeyStore

ApiKeyDep = NamedDependency[ApiKey]
PortalUserDep = NamedDependency[PortalUser]


class CredentialStores(Protocol):
    """What a credential is checked with; read on every request, so a replaced budget counts."""

    @property
    def api_keys(self) -> ApiKeyStore: ...

    @property
    def portal_tokens(self) -> TokenVerifier: ...

    @property
    def rate_limits(self) -> Budgets: ...


class Authenticated(Protocol):
    """A controller's dependency (`services`) whose routes check a credential."""

    @property
    def credentials(self) -> CredentialStores: ...


# Any, not Authenticated: Litestar checks each dependency value against its annotation on every
# request, and isinstance against a Protocol costs about a hundred Python calls; `_stores`
# states the type.
AuthenticatedDep = NamedDependency[Any]


def _stores(services: Any) -> CredentialStores:
    return cast(Authenticated, services).credentials


PORTAL_USER_STATE = "portal_user"
"""`request.state` key under which the portal guard leaves the authenticated caller."""

_Provider = TypeVar("_Provider", bound=Callable[..., Any])
_CREDENTIAL_PROVIDERS: set[Callable[..., Any]] = set()


def credential_provider(provider: _Provider) -> _Provider:
    """Mark a dependency that checks credentials and spends their budget itself."""
    _CREDENTIAL_PROVIDERS.add(provider)
    return provider


def is_credential_provider(dependency: Callable[..., Any]) -> bool:
    return dependency in _CREDENTIAL_PROVIDERS


def client_address(connection: ASGIConnection[Any, Any, Any, Any], budgets: Budgets) -> str:
    """The address the rate limits charge (X-Forwarded-For only from trusted proxies)."""
    peer = connection.client.host if connection.client else None
    return budgets.addresses.of(peer, connection.headers.get("x-forwarded-for"))


def bearer_token(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer credentials in the Authorization header")
    return token.strip()


async def _known_key(request: Request[Any, Any, Any], stores: CredentialStores) -> ApiKey:
    budgets = stores.rate_limits
    async with budgets.checking_credentials(client_address(request, budgets)):
        key = await stores.api_keys.authenticate(bearer_token(request))
        if key is None:
            raise Unauthenticated("unknown or revoked API key")
    await budgets.spend_api_key(key.key_id)
    return key


async def _key_with_scope(
    request: Request[Any, Any, Any], stores: CredentialStores, scope: str
) -> ApiKey:
    key = await _known_key(request, stores)
    if scope not in key.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    return key


@credential_provider
async def provide_ingest_key(request: Request[Any, Any, Any], services: AuthenticatedDep) -> ApiKey:
    return await _key_with_scope(request, _stores(services), "ingest")


@credential_provider
async def provide_admin_key(request: Request[Any, Any, Any], services: AuthenticatedDep) -> ApiKey:
    return await _key_with_scope(request, _stores(services), "admin")


@credential_provider
async def provide_any_key(request: Request[Any, Any, Any], services: AuthenticatedDep) -> ApiKey:
    return await _known_key(request, _stores(services))


@credential_provider
async def provide_portal_user(
    request: Request[Any, Any, Any], services: AuthenticatedDep
) -> PortalUser:
    """`Authorization: Bearer <JWT>` to the PortalUser it names."""
    stores = _stores(services)
    rate_limits = stores.rate_limits
    async with rate_limits.checking_credentials(client_address(request, rate_limits)):
        user = await stores.portal_tokens.verify(bearer_token(request))
    # For the error handler: a 404 to this caller counts toward their intrusion alert.
    request.state[PORTAL_USER_STATE] = user
    await rate_limits.spend_portal_user(user.sub)
    return user
