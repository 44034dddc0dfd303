"""Limits every request meets before a handler or Litestar's own parsing sees it.

Runs as the app's `before_request` hook, so it comes before the parameters and the body are
parsed: a query value over `MAX_PARAM_CHARS` or with control characters, and a JSON body over
`MAILBOX_LIMITS_MAX_JSON_BYTES` or nested deeper than `untrusted.MAX_JSON_DEPTH`, are answered
400/413 naming the parameter or `body`, instead of reaching code that would fail with a 500
(a RecursionError from the JSON decoder) or spend time proportional to the attacker's input.
Multipart (ingestion) and form bodies (the demo sign-in) have their own bounded readers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
    WebSocketCloseEvent,
)

from mailbox_service.errors import BadRequest, PayloadTooLarge
from mailbox_service.server.errors import error_body
from mailbox_service.untrusted import bounded, decode_json

MAX_HEADER_BYTES = 16 * 1024
"""All request header names and values together; a JWT of the maximum length fits."""
MAX_TARGET_BYTES = 8 * 1024
"""Path plus query string."""
MAX_PARAM_CHARS = 1024
"""Longest query parameter value; our longest legitimate one is a cursor (512)."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _takes_json_body(handler: HTTPRouteHandler) -> bool:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return False
    media_type = getattr(data.kwarg_definition, "media_type", RequestEncodingType.JSON)
    return media_type == RequestEncodingType.JSON


def check_query(request: Request[Any, Any, Any]) -> None:
    for name, value in request.query_params.multi_items():
        label = bounded(name)
        if len(value) > MAX_PARAM_CHARS or len(name) > MAX_PARAM_CHARS:
            raise BadRequest(f"{label}: longer than {MAX_PARAM_CHARS} characters", field=label)
        if not value.isprintable():
            raise BadRequest(f"{label}: contains control characters", field=label)
        if "\ufffd" in value:  # what the query parser made of bytes that are not UTF-8
            raise BadRequest(f"{label}: is not valid UTF-8", field=label)


async def enforce_request_limits(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook: raise a 4xx MailboxError for a request over a limit."""
    check_query(request)
    handler = request.route_handler
    if (
        request.method in BODY_METHODS
        and isinstance(handler, HTTPRouteHandler)
        and _takes_json_body(handler)
    ):
        max_bytes = request.app.state.services.settings.limits.max_json_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes", field="body")
        # The body is read once and kept on the request; Litestar's parsing reuses it.
        decode_json(await request.body(), "body", max_bytes=max_bytes)


class RequestSizeLimit:
    """ASGI wrapper of the whole app (HTTP, Socket.IO): refuses over-long headers and targets.

    uvicorn's httptools parser accepts headers of any size, so the bound is ours: 431 beyond
    `MAX_HEADER_BYTES`, 414 beyond `MAX_TARGET_BYTES`, before any route or Engine.IO sees it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _refusal(scope) if scope["type"] in {"http", "websocket"} else None
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == ScopeType.WEBSOCKET:
            close: WebSocketCloseEvent = {"type": "websocket.close", "code": 1009, "reason": ""}
            await send(close)
        else:
            await send_error(send, *refusal)


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer with the error envelope from plain ASGI, where no Litestar handler runs."""
    body = msgspec.json.encode(error_body(status, code, message))
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ],
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


def _refusal(scope: Scope) -> tuple[int, str, str] | None:
    header_bytes = sum(len(name) + len(value) for name, value in scope.get("headers", ()))
    if header_bytes > MAX_HEADER_BYTES:
        return 431, "request_header_fields_too_large", f"headers exceed {MAX_HEADER_BYTES} bytes"
    target = len(scope.get("raw_path") or scope.get("path", "").encode()) + len(
        scope.get("query_string", b"")
    )
    if target > MAX_TARGET_BYTES:
        return 414, "uri_too_long", f"path and query exceed {MAX_TARGET_BYTES} bytes"
    return None
