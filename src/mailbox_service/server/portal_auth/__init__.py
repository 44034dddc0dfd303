"""Portal authentication: customer JWTs (JWKS from an OIDC provider, or HS256 for development).

`tokens` verifies and mints tokens, `jwks` caches the provider's keys; neither knows about
Litestar or `Services`, so `Services`, the Socket.IO server and the CLI can all use them.
`guard.provide_portal_user` is the Litestar dependency built on top.
"""

from mailbox_service.server.portal_auth.jwks import JwksKeySet
from mailbox_service.server.portal_auth.tokens import PortalUser, TokenVerifier, mint_token

__all__ = ["JwksKeySet", "PortalUser", "TokenVerifier", "mint_token"]
