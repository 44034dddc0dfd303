"""Bounds on what a Socket.IO client may send us.

Clients send one thing on purpose: the CONNECT packet with `auth={"token": JWT}`. Engine.IO
caps a message at `MAX_MESSAGE_BYTES` (its `max_http_buffer_size`, default 1 MB), and
`BoundedPacket` parses the JSON of every packet with the limits of `untrusted.decode_json`
(depth `MAX_JSON_DEPTH`) instead of the standard library's unbounded `json.loads`, which
raised RecursionError on deep nesting and left Engine.IO logging a stack trace per message.

A payload over a limit is not an error to log: a CONNECT keeps no auth (and is refused
"unauthorized", the client sees `connect_error`); any other packet becomes a DISCONNECT of
its namespace.

`EngineIoBodyLimit` reads a long-polling POST before Engine.IO does: over `MAX_MESSAGE_BYTES`
is a 413, bytes that are not UTF-8 a 400 (Engine.IO decodes them unchecked and logged a stack
trace; a body over its own cap left the request hanging).
"""

from __future__ import annotations

import json
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from socketio import packet

from mailbox_service.errors import MailboxError
from mailbox_service.log import get_logger
from mailbox_service.server.request_limits import send_error
from mailbox_service.untrusted import decode_json

log = get_logger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
"""Largest Engine.IO message accepted; a CONNECT with the longest token we accept is 16 KB."""


class BoundedPacket(packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet whose JSON payload is parsed within our size and depth limits."""

    def decode(self, encoded_packet: Any) -> int:
        if not isinstance(encoded_packet, str):
            return super().decode(encoded_packet)  # type: ignore[no-any-return]
        try:
            return super().decode(encoded_packet)  # type: ignore[no-any-return]
        except (MailboxError, ValueError) as exc:
            reason = exc.message if isinstance(exc, MailboxError) else str(exc)[:200]
            log.info("realtime.payload_refused", reason=reason)
            if getattr(self, "packet_type", None) != packet.CONNECT:
                self.packet_type = packet.DISCONNECT
            self.namespace = getattr(self, "namespace", None)
            self.data = None
            return 0


class _BoundedJson:
    """The `json` module interface python-socketio calls, with our limits on `loads`."""

    @staticmethod
    def loads(text: str | bytes) -> Any:
        raw = text.encode() if isinstance(text, str) else text
        return decode_json(raw, "payload", max_bytes=MAX_MESSAGE_BYTES)

    dumps = staticmethod(json.dumps)


BoundedPacket.json = _BoundedJson


class EngineIoBodyLimit:
    """ASGI wrapper: bounds and checks the body of every POST below `path` (long-polling)."""

    def __init__(self, app: ASGIApp, path: str = "/socket.io") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") != "POST"
            or not scope["path"].startswith(self.path)
        ):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            event: Any = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            more = bool(event.get("more_body", False))
            if len(body) > MAX_MESSAGE_BYTES:
                await send_error(
                    send, 413, "payload_too_large", f"message exceeds {MAX_MESSAGE_BYTES} bytes"
                )
                return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            await send_error(send, 400, "bad_request", "message is not valid UTF-8")
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the body already read, then defers to the real one."""
    pending = [body]

    async def replayed() -> Any:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replayed
