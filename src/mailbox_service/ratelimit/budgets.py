"""Which budget a request spends, and the `RateLimited` error when it is used up.

- An API key spends its own budget (`MAILBOX_RATE_INGEST_PER_MINUTE`), on ingestion and admin
  routes alike.
- A portal user spends the budget of the token's subject (`MAILBOX_RATE_PORTAL_PER_MINUTE`),
  whichever node or token the requests come with.
- Everything without credentials that passed, i.e. routes that need none and requests whose
  key or token was refused, spends the client address's budget
  (`MAILBOX_RATE_ANONYMOUS_PER_MINUTE`): a stream of guessed keys or tokens is capped per
  address, and a request with a made-up key never gets a budget of its own.

An address seen over its budget is remembered by this process until its wait is over, and its
requests are refused before their credentials are checked: a flood from one address then costs
neither a database lookup of the key nor a Redis round trip. Valid credentials from that
address wait too (on this node), which is what an address sending a flood has earned.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mailbox_service.errors import ConfigurationError, RateLimited, Unauthenticated
from mailbox_service.ratelimit.addresses import ClientAddresses
from mailbox_service.ratelimit.gcra import RateLimiter
from mailbox_service.settings import RateSettings

MAX_REMEMBERED_ADDRESSES = 10_000
"""Addresses over budget kept in memory; a larger crowd is simply asked about in Redis."""


def check_rate_settings(settings: RateSettings) -> None:
    """Negative budgets are a typo, not "unlimited": stop start-up naming the variable."""
    for name in (
        "ingest_per_minute",
        "portal_per_minute",
        "anonymous_per_minute",
        "sockets_per_address",
        "sockets_per_user",
    ):
        if getattr(settings, name) < 0:
            raise ConfigurationError(
                f"MAILBOX_RATE_{name.upper()}: must be 0 (unlimited) or more "
                f"(got {getattr(settings, name)})"
            )
    if settings.socket_auth_timeout_s <= 0:
        raise ConfigurationError(
            "MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S: must be more than 0 "
            f"(got {settings.socket_auth_timeout_s})"
        )


def _exceeded(per_minute: int, whose: str, retry_after_s: int) -> RateLimited:
    return RateLimited(
        f"rate limit of {per_minute} requests per minute for {whose} exceeded; "
        f"retry after {retry_after_s} s",
        retry_after_s=retry_after_s,
    )


class Budgets:
    """The three HTTP budgets over one shared `RateLimiter`."""

    def __init__(self, settings: RateSettings, limiter: RateLimiter) -> None:
        check_rate_settings(settings)
        self.settings = settings
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self._limiter = limiter
        self._blocked_until: dict[str, float] = {}

    async def spend_api_key(self, key_id: str) -> None:
        per_minute = self.settings.ingest_per_minute
        wait = await self._limiter.take(f"key:{key_id}", per_minute)
        if wait:
            raise _exceeded(per_minute, "this API key", wait)

    async def spend_portal_user(self, sub: str) -> None:
        per_minute = self.settings.portal_per_minute
        wait = await self._limiter.take(f"sub:{sub}", per_minute)
        if wait:
            raise _exceeded(per_minute, "this portal user", wait)

    async def spend_anonymous(self, address: str) -> None:
        """Charge the address; `RateLimited` when it is (or already was) over its budget."""
        self.refuse_if_blocked(address)
        per_minute = self.settings.anonymous_per_minute
        wait = await self._limiter.take(f"addr:{address}", per_minute)
        if wait:
            self._remember_blocked(address, wait)
            raise _exceeded(per_minute, "this client address", wait)

    def refuse_if_blocked(self, address: str) -> None:
        until = self._blocked_until.get(address)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return
        raise _exceeded(self.settings.anonymous_per_minute, "this client address", math.ceil(left))

    def _remember_blocked(self, address: str, wait_s: int) -> None:
        if len(self._blocked_until) >= MAX_REMEMBERED_ADDRESSES:
            now = time.monotonic()
            self._blocked_until = {a: t for a, t in self._blocked_until.items() if t > now}
            if len(self._blocked_until) >= MAX_REMEMBERED_ADDRESSES:
                return
        self._blocked_until[address] = time.monotonic() + wait_s

    async def close(self) -> None:
        await self._limiter.close()

    @asynccontextmanager
    async def checking_credentials(self, address: str) -> AsyncIterator[None]:
        """Around a credential check: refused credentials spend the address's budget.

        Over budget, the answer is 429 instead of 401, for every request from that address
        until it has budget again.
        """
        self.refuse_if_blocked(address)
        try:
            yield
        except Unauthenticated:
            await self.spend_anonymous(address)
            raise
