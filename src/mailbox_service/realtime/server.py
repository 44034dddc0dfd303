"""The Socket.IO server mounted at `/socket.io` beside the HTTP API.

A client connects with `auth={"token": <portal JWT>}`; a missing, bad or expired token is
refused (ConnectionRefusedError: the client sees `connect_error`). An accepted connection joins
the room `account:<id>` of each account in its token and is disconnected when the token
expires, so access never outlives the token; the client reconnects with a fresh one.

Sessions are capped (`realtime/guarded.py`): per client address while unauthenticated, per
token subject once authenticated, and a session that has not authenticated within
`MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S` is closed. Refused tokens spend the address's HTTP budget.

The client manager is an AsyncRedisManager: every API node subscribes to the same Redis
channel, so an event emitted anywhere (another node, the worker) reaches the socket wherever it
is connected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import socketio

from mailbox_service.auth.tokens import TokenVerifier
from mailbox_service.errors import MailboxError, RateLimited, Unauthenticated
from mailbox_service.log import get_logger
from mailbox_service.observability import metrics
from mailbox_service.realtime.events import CHANNEL, NAMESPACE, room_for
from mailbox_service.realtime.guarded import GuardedServer
from mailbox_service.realtime.payloads import MAX_MESSAGE_BYTES, BoundedPacket
from mailbox_service.settings import Settings

log = get_logger(__name__)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


class OriginPolicy:
    """Browsers may connect from our own origin or from the portal's (`portal_url`)."""

    def __init__(self, portal_url: str) -> None:
        self._portal = origin_of(portal_url)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True  # not a browser: nothing to protect against cross-site use
        host = environ.get("HTTP_HOST", "")
        own = {f"http://{host}", f"https://{host}"} if host else set()
        return origin in own or (bool(self._portal) and origin == self._portal)


def _token_from(auth: Any) -> str:
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise Unauthenticated("send auth={token: <portal JWT>}")
    return token


class PortalNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """The default namespace: authenticates on connect and puts the socket in its rooms."""

    def __init__(self, verifier: TokenVerifier, guard: GuardedServer) -> None:
        super().__init__(NAMESPACE)
        self._verifier = verifier
        self._guard = guard
        self._expiries: dict[str, asyncio.Task[None]] = {}
        self._counted: set[str] = set()  # accepted sockets, for the connections gauge

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # A refused token spends the client address's budget, as a refused HTTP request does.
        try:
            async with self._guard.budgets.checking_credentials(
                self._guard.client_address(environ)
            ):
                user = await self._verifier.verify(_token_from(auth))
        except RateLimited as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                f"rate limited: {exc.message}"
            ) from None
        except MailboxError as exc:
            log.info("realtime.refused", reason=exc.message)
            raise socketio.exceptions.ConnectionRefusedError(
                f"unauthorized: {exc.message}"
            ) from None
        refusal = await self._guard.sessions.authenticated(
            self._guard.eio_sid_of(sid, NAMESPACE), user.sub
        )
        if refusal is not None:
            raise socketio.exceptions.ConnectionRefusedError(f"rate limited: {refusal}")
        await self.save_session(sid, {"sub": user.sub, "accounts": list(user.accounts)})
        for account_id in user.accounts:
            await self.enter_room(sid, room_for(account_id))
        if user.expires_at is not None:
            self._expiries[sid] = asyncio.create_task(self._expire(sid, user.expires_at))
        self._counted.add(sid)
        metrics.socketio_connections(+1)

    async def on_disconnect(self, sid: str, *reason: Any) -> None:
        if sid in self._counted:
            self._counted.discard(sid)
            metrics.socketio_connections(-1)
        task = self._expiries.pop(sid, None)
        if task is not None:
            task.cancel()

    async def _expire(self, sid: str, expires_at: dt.datetime) -> None:
        delay = (expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        await asyncio.sleep(max(delay, 0))
        # Forget the task first, so the disconnect handler does not cancel us mid-disconnect.
        self._expiries.pop(sid, None)
        log.info("realtime.token_expired", sid=sid)
        await self.disconnect(sid)


def create_socketio_server(
    settings: Settings,
    verifier: TokenVerifier,
    *,
    client_manager: socketio.AsyncManager | None = None,
) -> socketio.AsyncServer:
    """An AsyncServer for ASGI whose rooms are shared across nodes through Redis."""
    manager = client_manager or socketio.AsyncRedisManager(settings.redis.url, channel=CHANNEL)
    sio = GuardedServer(
        settings.rate,
        settings.redis.url,
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins=OriginPolicy(settings.portal_url),
        logger=False,
        engineio_logger=False,
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        serializer=BoundedPacket,
    )
    sio.register_namespace(PortalNamespace(verifier, sio))
    return sio
