"""ApiKeyStore: ingest and admin keys for output-management systems and operators.

Only a SHA-256 of the key is stored. Keys carry 256 bits of randomness, so a fast hash is
enough: there is nothing to brute-force, unlike a password.

An ingest key may be bound to account id patterns (`accounts`, globs matched with
`fnmatch.fnmatchcase`): it may then only send documents to matching accounts. A key stored
without the field (every key made before it existed) may send to every account.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Literal

import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections

Scope = Literal["ingest", "admin"]
SCOPES: tuple[Scope, ...] = ("ingest", "admin")
KEY_PREFIX = "mbx"


class ApiKey(msgspec.Struct, frozen=True):
    key_id: str
    source: str
    scopes: list[str]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None
    accounts: tuple[str, ...] = ()
    """Account id patterns this key may send to; empty: every account."""

    def may_send_to(self, account_id: str) -> bool:
        return not self.accounts or any(fnmatchcase(account_id, p) for p in self.accounts)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _to_key(doc: dict[str, object]) -> ApiKey:
    return msgspec.convert(
        {
            "key_id": doc["_id"],
            "source": doc["source"],
            "scopes": doc["scopes"],
            "created_at": doc["created_at"],
            "revoked_at": doc.get("revoked_at"),
            "accounts": doc.get("accounts") or (),
        },
        ApiKey,
        strict=False,
    )


class _Remembered(msgspec.Struct):
    key: ApiKey
    until: float


class ApiKeyStore:
    def __init__(self, collections: Collections, *, cache_seconds: float = 0.0) -> None:
        self._keys = collections.api_keys
        # Every ingest request authenticates; remembering a checked key for a few seconds saves
        # a database round trip per request. Only positive answers are remembered, so a new
        # key works at once; a revoked one stops within `cache_seconds`.
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Remembered] = {}

    async def create(
        self, source: str, scopes: list[str], accounts: Sequence[str] = ()
    ) -> tuple[ApiKey, str]:
        """Store a new key; return it with its secret, which is shown once and never again.

        `accounts`: patterns the key may send documents to (none: every account).
        """
        key_id = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        await self._keys.insert_one(
            {
                "_id": key_id,
                "hash": hash_key(secret),
                "source": source,
                "scopes": scopes,
                "created_at": now,
                "revoked_at": None,
                **({"accounts": list(accounts)} if accounts else {}),
            }
        )
        return ApiKey(key_id, source, scopes, now, accounts=tuple(accounts)), secret

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The active key matching `secret`, or None (unknown or revoked)."""
        digest = hash_key(secret)
        now = time.monotonic()
        remembered = self._cache.get(digest)
        if remembered is not None and remembered.until > now:
            return remembered.key
        doc = await self._keys.find_one({"hash": digest, "revoked_at": None})
        if doc is None:
            self._cache.pop(digest, None)
            return None
        key = _to_key(doc)
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:  # bounded: drop everything rather than grow
                self._cache.clear()
            self._cache[digest] = _Remembered(key, now + self._cache_seconds)
        return key

    async def list(self) -> list[ApiKey]:
        return [_to_key(doc) async for doc in self._keys.find({}).sort("created_at", 1)]

    async def revoke(self, key_id: str) -> bool:
        result = await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": utcnow()}}
        )
        return result.modified_count == 1
