"""Portal tokens: verify a customer's JWT, and mint development tokens.

Which algorithm a token may use follows from what is configured, never from the token alone:
HS256 only when an HS256 secret is set, asymmetric algorithms only with keys from the JWKS URL.
That closes `alg: none` and the classic confusion of verifying an RS256 public key as an HMAC
secret. Claims: `sub` (who) and `accounts` (which customer accounts they may read), plus the
usual `exp`, `aud` and `iss`; roles, support and `acr` are read in `claims.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from mailbox_service.auth.claims import PortalUser, user_from
from mailbox_service.auth.jwks import ASYMMETRIC_ALGORITHMS, JwksKeySet
from mailbox_service.auth.verified import Verified, VerifiedTokens, token_digest
from mailbox_service.errors import BadRequest, ConfigurationError, Unauthenticated
from mailbox_service.settings import AuthSettings, check_auth
from mailbox_service.untrusted import quoted

__all__ = ["PortalUser", "TokenVerifier", "mint_token"]

HMAC_ALGORITHM = "HS256"
LEEWAY_S = 30
"""Clock skew we tolerate between the identity provider and us, in seconds."""
MAX_TOKEN_LENGTH = 16 * 1024


def _check_lifetime(claims: dict[str, Any], max_lifetime_s: int) -> None:
    """Refuse a token minted to live longer than we allow: `exp - iat`, or `exp - now`.

    A stolen long-lived token is a standing key to a mailbox; the cap bounds what one is worth.
    """
    exp = claims["exp"]  # checked numeric by jwt.decode
    iat = claims.get("iat")
    start = iat if isinstance(iat, int | float) else dt.datetime.now(dt.UTC).timestamp()
    if exp - start > max_lifetime_s:
        raise Unauthenticated(f"token lives longer than the accepted maximum of {max_lifetime_s} s")


class TokenVerifier:
    """Checks signature, `exp`, `aud` and `iss`, and turns the claims into a PortalUser.

    A token that passed is remembered until it expires, for as long as its key is the current
    one (`verified.py`), so a session's later requests skip the full check.
    """

    def __init__(
        self,
        settings: AuthSettings,
        *,
        jwks: JwksKeySet | None = None,
        leeway_s: float = LEEWAY_S,
        verified: VerifiedTokens | None = None,
    ) -> None:
        check_auth(settings)  # settings built in code skip load_settings' check
        self._secret = settings.jwt_secret
        self._audience = settings.audience
        self._issuer = settings.issuer
        self._leeway = leeway_s
        self._max_lifetime_s = settings.max_token_lifetime_s
        self._jwks = jwks or (JwksKeySet(settings.jwks_url) if settings.jwks_url else None)
        self._verified = verified if verified is not None else VerifiedTokens()

    @property
    def configured(self) -> bool:
        """False when neither a secret nor a JWKS URL is set: no token can ever pass."""
        return bool(self._secret) or self._jwks is not None

    async def verify(self, token: str) -> PortalUser:
        """The caller the token stands for; Unauthenticated for every kind of bad token."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("token is too long")
        digest = token_digest(token)
        remembered = self._verified.get(digest)
        if remembered is not None:
            user = await self._still_valid(digest, remembered)
            if user is not None:
                return user
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str):
            raise Unauthenticated("token names no signing algorithm")
        kid = header.get("kid")
        kid = kid if isinstance(kid, str) else None
        key = await self._key_for(algorithm, kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated(
                f"token is not meant for this service (aud {self._audience!r} expected)"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token was issued by an issuer we do not trust") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature is invalid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the `{exc.claim}` claim") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"token is not valid: {exc}") from None
        _check_lifetime(claims, self._max_lifetime_s)
        user = user_from(claims)
        # PyJWT accepts the token while `now < exp + leeway`; the entry holds exactly as long.
        valid_until = claims["exp"] + self._leeway
        self._verified.remember(digest, Verified(user, algorithm, kid, key, valid_until))
        return user

    async def _still_valid(self, digest: bytes, remembered: Verified) -> PortalUser | None:
        """The remembered user if the key that verified the token is still the current one."""
        try:
            key = await self._key_for(remembered.algorithm, remembered.kid)
        except Unauthenticated:
            self._verified.forget(digest)  # the key was withdrawn: so is everything it signed
            raise
        if key is not remembered.key:
            self._verified.forget(digest)
            return None
        return remembered.user

    async def _key_for(self, algorithm: str, kid: str | None) -> Any:
        if algorithm == HMAC_ALGORITHM and self._secret:
            return self._secret
        if algorithm in ASYMMETRIC_ALGORITHMS and self._jwks:
            return await self._jwks.key_for(kid, algorithm)
        raise Unauthenticated(f"token algorithm {quoted(algorithm)} is not accepted")


def mint_token(
    settings: AuthSettings,
    sub: str,
    accounts: Sequence[str],
    *,
    ttl_s: int = 3600,
    now: dt.datetime | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A development token signed with the HS256 secret (refused when none is configured)."""
    if not settings.jwt_secret:
        raise ConfigurationError(
            "no HS256 secret is configured (MAILBOX_AUTH_JWT_SECRET); development tokens "
            "can only be minted with one"
        )
    if ttl_s > settings.max_token_lifetime_s:
        raise BadRequest(
            f"ttl: {ttl_s} s is longer than MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S "
            f"({settings.max_token_lifetime_s} s)",
            field="ttl",
        )
    issued = now or dt.datetime.now(dt.UTC)
    claims = {
        "sub": sub,
        "accounts": list(accounts),
        "aud": settings.audience,
        "iss": settings.issuer,
        "iat": int(issued.timestamp()),
        "exp": int((issued + dt.timedelta(seconds=ttl_s)).timestamp()),
        # e.g. `account_roles`, `roles` or `acr` (docs/portal.md, "Token claims")
        **(extra_claims or {}),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=HMAC_ALGORITHM)
