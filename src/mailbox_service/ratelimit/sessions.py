"""Socket.IO session caps that hold across API nodes: per client address and per user.

Each cap is a Redis sorted set whose members are Engine.IO session ids and whose scores are
lease ends (Redis time, ms). Admitting a session drops expired members, counts the rest and
adds the new one in one script, so two nodes cannot both take the last place. The sets heal
themselves when a node dies with its sessions: an unauthenticated session is closed within
the auth timeout anyway, so its lease is that timeout plus a margin; an authenticated one has
a lease the owning node renews every third of it, and the members of a dead node lapse
within one lease.

Every Engine.IO session starts unauthenticated (counted per address) and is closed when it
has not authenticated within `MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S`; authenticating moves it
to its user's set. Like the HTTP budgets, these caps fail open when Redis does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mailbox_service.log import get_logger
from mailbox_service.ratelimit.gcra import KEY_PREFIX, RedisOutage
from mailbox_service.settings import RateSettings

log = get_logger(__name__)

USER_LEASE_S = 60.0
"""How long an authenticated session's place outlives its node's last renewal."""
ANONYMOUS_LEASE_MARGIN_S = 5.0
"""Added to the auth timeout for an unauthenticated session's place (timer lateness)."""

# KEYS[1]: the set. ARGV[1]: member, ARGV[2]: lease in ms, ARGV[3]: cap (0: no cap).
# Returns 1 when admitted, 0 when the set is full.
ADMIT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lease = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap
    and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"""

# KEYS[1]: the set. ARGV[1]: lease in ms, ARGV[2...]: members still alive on this node.
RENEW_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease)
return 0
"""


@dataclass
class _Session:
    address: str
    sub: str | None = None
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def address_key(address: str) -> str:
    return f"{KEY_PREFIX}sockets:addr:{address}"


def user_key(sub: str) -> str:
    return f"{KEY_PREFIX}sockets:sub:{sub}"


class SocketSessions:
    """Admits, moves and forgets this node's Engine.IO sessions in the shared counts."""

    def __init__(
        self,
        settings: RateSettings,
        redis: aioredis.Redis,
        close: Callable[[str], Awaitable[None]],
        *,
        user_lease_s: float = USER_LEASE_S,
    ) -> None:
        self.settings = settings
        self._user_lease_s = user_lease_s
        self._redis = redis
        self._close = close
        self._admit = redis.register_script(ADMIT_SCRIPT)
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._sessions: dict[str, _Session] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._outage = RedisOutage("sockets")

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    async def opened(self, eio_sid: str, address: str) -> str | None:
        """A new Engine.IO session; the refusal message when its address is at the cap."""
        cap = self.settings.sockets_per_address
        lease_s = self.settings.socket_auth_timeout_s + ANONYMOUS_LEASE_MARGIN_S
        if not await self._admitted(address_key(address), eio_sid, lease_s, cap):
            return (
                f"too many unauthenticated Socket.IO sessions from this client address "
                f"(limit {cap}); authenticate or close one first"
            )
        session = _Session(address)
        session.timer = asyncio.get_running_loop().call_later(
            self.settings.socket_auth_timeout_s, self._close_if_anonymous, eio_sid
        )
        self._sessions[eio_sid] = session
        return None

    async def authenticated(self, eio_sid: str, sub: str) -> str | None:
        """The session proved who it is; the refusal message when that user is at the cap."""
        session = self._sessions.get(eio_sid)
        if session is None:
            return None  # closed meanwhile
        if session.sub == sub:
            return None
        cap = self.settings.sockets_per_user
        if not await self._admitted(user_key(sub), eio_sid, self._user_lease_s, cap):
            return f"too many Socket.IO sessions for this user (limit {cap}); close one first"
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        if session.sub is None:
            await self._forget(
                address_key(session.address), eio_sid, self.settings.sockets_per_address
            )
        else:  # connected again with another user's token
            await self._forget(user_key(session.sub), eio_sid, cap)
        session.sub = sub
        self._start_renewing()
        return None

    async def closed(self, eio_sid: str) -> None:
        session = self._sessions.pop(eio_sid, None)
        if session is None:
            return
        if session.timer is not None:
            session.timer.cancel()
        if session.sub is None:
            await self._forget(
                address_key(session.address), eio_sid, self.settings.sockets_per_address
            )
        else:
            await self._forget(user_key(session.sub), eio_sid, self.settings.sockets_per_user)

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self._redis.aclose()

    def _close_if_anonymous(self, eio_sid: str) -> None:
        session = self._sessions.get(eio_sid)
        if session is None or session.sub is not None:
            return
        log.info(
            "realtime.auth_timeout",
            address=session.address,
            timeout_s=self.settings.socket_auth_timeout_s,
        )
        task = asyncio.ensure_future(self._close(eio_sid))
        task.add_done_callback(_log_failure)

    async def _admitted(self, key: str, member: str, lease_s: float, cap: int) -> bool:
        if cap <= 0 or self._outage.ongoing:
            return True
        try:
            admitted = await self._admit(keys=[key], args=[member, int(lease_s * 1000), cap])
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)
            return True
        return bool(int(admitted))

    async def _forget(self, key: str, member: str, cap: int) -> None:
        if cap <= 0 or self._outage.ongoing:
            return  # nothing counted, or Redis is away: the lease ends it
        try:
            await self._redis.zrem(key, member)
        except (RedisError, OSError) as exc:
            self._outage.failed(exc)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._user_lease_s / 3)
            try:
                await self.renew()
            except (RedisError, OSError) as exc:
                self._outage.failed(exc)

    async def renew(self) -> None:
        """Extend the lease of every authenticated session of this node (one pipeline)."""
        by_user: dict[str, list[str]] = {}
        for eio_sid, session in self._sessions.items():
            if session.sub is not None:
                by_user.setdefault(session.sub, []).append(eio_sid)
        if not by_user or self.settings.sockets_per_user <= 0:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub, members in by_user.items():
                await self._renew(
                    keys=[user_key(sub)],
                    args=[int(self._user_lease_s * 1000), *members],
                    client=pipe,
                )
            await pipe.execute()


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("realtime.close_failed", error=str(task.exception()))
