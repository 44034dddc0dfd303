"""The OIDC provider's signing keys (a JWKS document), fetched over HTTP and cached.

Keys are refreshed when the cache is older than `max_age_s`, and when a token names a key id
we do not know: that is how a provider's key rotation reaches us without a restart. An unknown
`kid` costs at most one fetch per `min_refresh_interval_s`, so a stream of tokens with invented
key ids cannot turn us into a load generator against the provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from mailbox_service.errors import DependencyUnavailable, Unauthenticated
from mailbox_service.log import get_logger
from mailbox_service.untrusted import quoted

log = get_logger(__name__)

# Which JWK key type (`kty`) can verify which JWS algorithm. Symmetric (`oct`) keys are never
# taken from a JWKS: a shared secret published at a URL would let anyone mint tokens.
KEY_TYPE_FOR_ALGORITHM: Mapping[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
}
ASYMMETRIC_ALGORITHMS = frozenset(KEY_TYPE_FOR_ALGORITHM)

MAX_JWKS_BYTES = 512 * 1024


def _usable(jwk: Mapping[str, Any], kid: str | None, algorithm: str) -> bool:
    if jwk.get("kty") != KEY_TYPE_FOR_ALGORITHM[algorithm]:
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    if "alg" in jwk and jwk["alg"] != algorithm:
        return False
    return kid is None or jwk.get("kid") == kid


class JwksKeySet:
    """Public keys of one JWKS URL; `key_for` answers the key that verifies a token."""

    def __init__(
        self,
        url: str,
        *,
        max_age_s: float = 600.0,
        min_refresh_interval_s: float = 10.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.max_age_s = max_age_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.timeout_s = timeout_s
        self.fetches = 0
        """How many times the document was fetched (for logs and tests)."""
        self._keys: list[dict[str, Any]] = []
        self._built: dict[tuple[str | None, str], Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """The key object verifying `algorithm` under `kid`; Unauthenticated when there is none."""
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise Unauthenticated(f"token algorithm {quoted(algorithm)} is not accepted")
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at > self.max_age_s
        if stale and self._may_refresh():
            await self._refresh(reason="expired" if self._keys else "initial")
        if not self._keys:
            raise DependencyUnavailable(
                f"the identity provider's keys could not be fetched from {self.url}"
            )
        key = self._lookup(kid, algorithm)
        if key is None and self._may_refresh():
            await self._refresh(reason="unknown_kid")
            key = self._lookup(kid, algorithm)
        if key is None:
            raise Unauthenticated(f"token is signed with an unknown key (kid {quoted(kid)})")
        return key

    def _may_refresh(self) -> bool:
        return (
            self._attempted_at is None
            or time.monotonic() - self._attempted_at >= self.min_refresh_interval_s
        )

    def _lookup(self, kid: str | None, algorithm: str) -> Any:
        cached = self._built.get((kid, algorithm))
        if cached is not None:
            return cached
        candidates = [jwk for jwk in self._keys if _usable(jwk, kid, algorithm)]
        # Without a `kid` we only guess when the guess cannot be wrong.
        if len(candidates) != 1:
            return None
        try:
            key = jwt.PyJWK(candidates[0], algorithm=algorithm).key
        except jwt.PyJWTError as exc:
            log.warning("jwks.key_unusable", kid=kid, algorithm=algorithm, error=str(exc))
            return None
        self._built[(kid, algorithm)] = key
        return key

    async def _refresh(self, *, reason: str) -> None:
        """Fetch the document again; keep the old keys when the provider does not answer."""
        seen = self._attempted_at
        async with self._lock:
            if self._attempted_at != seen:
                return  # another request refreshed while we waited for the lock
            # Counted as an attempt even when it fails, so a dead provider is not hammered.
            self._attempted_at = time.monotonic()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks.fetch_failed", url=self.url, reason=reason, error=str(exc))
                return
            self._keys = keys
            self._built = {}
            self._fetched_at = time.monotonic()
            self.fetches += 1
            log.info("jwks.refreshed", url=self.url, reason=reason, keys=len(keys))

    async def _fetch(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            response = await client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"JWKS document is larger than {MAX_JWKS_BYTES} bytes")
        document = response.json()
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ValueError("JWKS document has no `keys` list")
        return [key for key in keys if isinstance(key, dict)]
