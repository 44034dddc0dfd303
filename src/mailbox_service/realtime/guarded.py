"""A Socket.IO server that caps sessions before they cost memory.

Engine.IO hands out a session to anyone who asks (a handshake needs no credentials), and each
one holds buffers and a ping task until it times out: 20,000 handshakes held about 300 MB.
`GuardedServer` therefore counts every new Engine.IO session against its client address
(refusing the handshake with 429 at the cap), closes a session that has not authenticated
within the auth timeout, and gives the namespace what it needs to charge failed tokens to
the address's HTTP budget and to count authenticated sessions per user.

It hooks two methods python-socketio and python-engineio keep private (`_handle_eio_connect`
/ `_handle_eio_disconnect`, and `_unauthorized`); `tests/integration/realtime/test_socket_limits.py`
pins what they must do, so an upgrade that changes them fails there.
"""

from __future__ import annotations

import json
import math
from typing import Any

import engineio
import socketio

from mailbox_service.ratelimit import (
    Budgets,
    ClientAddresses,
    RateLimiter,
    SocketSessions,
    limiter_redis,
)
from mailbox_service.settings import RateSettings


class SessionRefused:
    """Why a handshake was refused; engineio passes it on to `_unauthorized`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        self.message = message
        self.retry_after_s = retry_after_s


class _RefusingEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """Answers a handshake refused for a session cap with 429 and Retry-After, not 401."""

    def _unauthorized(self, message: Any = None) -> dict[str, Any]:
        if not isinstance(message, SessionRefused):
            return super()._unauthorized(message)  # type: ignore[no-any-return]
        body = {"error": {"status": 429, "code": "rate_limited", "message": message.message}}
        return {
            "status": "429 TOO MANY REQUESTS",
            "headers": [
                ("Content-Type", "application/json"),
                ("Retry-After", str(message.retry_after_s)),
            ],
            "response": json.dumps(body).encode(),
        }


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """`socketio.AsyncServer` with per-address and per-user session caps and an auth timeout."""

    def __init__(self, rate: RateSettings, redis_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        redis = limiter_redis(redis_url)
        self.addresses = ClientAddresses(rate.trusted_proxies)
        self.budgets = Budgets(rate, RateLimiter(redis))
        self.sessions = SocketSessions(rate, redis, close=self._close_engine_session)
        self._retry_after_s = max(1, math.ceil(rate.socket_auth_timeout_s))

    def client_address(self, environ: dict[str, Any]) -> str:
        return self.addresses.of(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"))

    def eio_sid_of(self, sid: str, namespace: str) -> str:
        return str(self.manager.eio_sid_from_sid(sid, namespace))

    async def _close_engine_session(self, eio_sid: str) -> None:
        await self.eio.disconnect(eio_sid)

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        refusal = await self.sessions.opened(eio_sid, self.client_address(environ))
        if refusal is not None:
            return SessionRefused(refusal, self._retry_after_s)
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            await self.sessions.closed(eio_sid)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _RefusingEngineServer
