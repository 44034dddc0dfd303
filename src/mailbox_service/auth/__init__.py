"""Who is calling: customer JWTs for the portal (JWKS from an OIDC provider, or HS256 for
development) and API keys for senders and operators.

`tokens` verifies and mints tokens, `jwks` caches the provider's keys, `claims` reads roles and
accounts; none of them knows about Litestar, so the API, the Socket.IO server and the CLI all
use them. `providers` holds the Litestar dependencies built on top (`provide_portal_user`,
`provide_*_key`). This package sits below the HTTP layer (`server/`) and the domain packages:
it imports only storage, settings, rate limits and the foundation modules.
"""

from mailbox_service.auth.jwks import JwksKeySet
from mailbox_service.auth.tokens import PortalUser, TokenVerifier, mint_token

__all__ = ["JwksKeySet", "PortalUser", "TokenVerifier", "mint_token"]
