"""Security headers on every HTTP response: API answers, errors, files, portal pages, Socket.IO.

A plain ASGI wrapper around the whole application (asgi.py), so nothing that answers HTTP can
forget them, including responses made by exception handlers and by Engine.IO's long-polling.
A header a route sets itself wins, with two exceptions: a Content-Security-Policy without
`frame-ancestors` gets it appended, and JSON is never stored by a cache (it carries a
customer's document data), whatever the route said.
"""

from __future__ import annotations

from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HSTS = "max-age=31536000; includeSubDomains"
DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"strict-transport-security", HSTS.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
)
NO_FRAMING = b"frame-ancestors 'none'"


def _is_json(content_type: bytes) -> bool:
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


def with_security_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (ASGI raw pairs) with the defaults added where missing."""
    result: list[tuple[bytes, bytes]] = []
    present: set[bytes] = set()
    json = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-type":
            json = _is_json(value)
        if lower == b"content-security-policy" and b"frame-ancestors" not in value:
            value = value + b"; " + NO_FRAMING
        present.add(lower)
        result.append((name, value))
    if json and b"cache-control" in present:
        result = [(n, v) for n, v in result if n.lower() != b"cache-control"]
        present.discard(b"cache-control")
    result.extend((name, value) for name, value in DEFAULTS if name not in present)
    return result


class SecurityHeaders:
    """ASGI middleware: adds `DEFAULTS` to the start of every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, send_secured)
