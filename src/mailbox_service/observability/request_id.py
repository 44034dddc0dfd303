"""Request ids: accept `X-Request-ID` or make one, echo it, log it, put it in error bodies.

A caller's id is kept only when it is short and made of safe characters (no spaces, quotes or
control characters that could forge log lines or headers); anything else is replaced by a fresh
id rather than refused, so a client with an odd id still gets its answer.

The id is stored three ways, for three readers: `request.state.request_id` (route handlers, the
audit trail), the structlog context (every log line of the request) and `current_request_id`
(error bodies built outside a handler's reach).
"""

from __future__ import annotations

import contextvars
import os
import re

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
MAX_LENGTH = 128
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_request_id", default=None
)


def new_request_id() -> str:
    return os.urandom(16).hex()


def accepted_request_id(value: str | None) -> str | None:
    """The caller's id when it is safe to echo and log, else None."""
    if not value or len(value) > MAX_LENGTH or not _SAFE.fullmatch(value):
        return None
    return value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestIdMiddleware:
    """Pure ASGI middleware around the whole app, so even a 404 or a 405 carries the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(_header(scope, _HEADER_BYTES)) or new_request_id()
        header = (_HEADER_BYTES, request_id.encode())
        # Litestar's `request.state` is a view of scope["state"].
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = current_request_id.set(request_id)
        bound = bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            reset_contextvars(**bound)
            current_request_id.reset(token)
