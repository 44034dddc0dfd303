"""Tokens this process has verified, so a portal session pays for the signature check once.

A customer's browser sends the same JWT with every request of a session. Verifying it (base64,
signature, claims) is the largest piece of CPU a small portal request costs after the HTTP
server itself, and its outcome changes only with time and with the key that signed it:

- time: `exp` is the only claim whose verdict changes once a token passed (`nbf` and `iat`
  only ever get further behind us), so an entry lives until `exp` plus the leeway the full
  check allows, never longer;
- the key: an entry remembers the key object it was verified with, and the verifier asks the
  key set for the token's key again on every hit. A key the identity provider withdrew, or
  one refreshed into a new object, misses the cache and the token is verified (or refused)
  in full, so caching never outlives a key rotation.

Only tokens that passed are remembered (a refused token is checked in full every time, so
guessing costs what it always cost), keyed by their SHA-256 so a long token costs 32 bytes,
and at most `capacity` of them: the oldest entry makes room for a new one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailbox_service.auth.claims import PortalUser

DEFAULT_CAPACITY = 10_000
"""About one entry per concurrently active portal session on one node: ~5 MiB when full
(measured with users of two accounts each; an entry holds the token's PortalUser)."""


@dataclass(frozen=True, slots=True)
class Verified:
    """What a successful verification found, and until when it holds."""

    user: PortalUser
    algorithm: str
    kid: str | None
    key: Any
    """The key object the signature was checked with: a hit must still get this very key."""
    valid_until: float
    """Unix time after which the full check would call the token expired."""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens:
    """A bounded map from token digest to its `Verified` outcome, dropping expired entries."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.time
    ) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: dict[bytes, Verified] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: bytes) -> Verified | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if self._clock() >= entry.valid_until:
            del self._entries[digest]
            return None
        return entry

    def remember(self, digest: bytes, entry: Verified) -> None:
        if self._capacity <= 0:
            return
        if digest not in self._entries and len(self._entries) >= self._capacity:
            # Dicts keep insertion order: the first entry is the oldest one remembered.
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = entry

    def forget(self, digest: bytes) -> None:
        self._entries.pop(digest, None)
