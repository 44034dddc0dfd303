"""A real HTTP receiver for webhook tests, and a signature check written from the Standard
Webhooks specification (not by calling the service's signer).

The receiver is a threaded `http.server` on 127.0.0.1 in the test process. `down()` closes its
listening socket (connections are then refused, as from a receiver that is really down) and
`up()` listens again on the same port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


def verify_signature(secret: str, received: Received, tolerance_s: float = 300) -> None:
    """Raise AssertionError unless one `v1` signature of the request is valid for `secret`
    and its timestamp is within the tolerance (the specification's replay check)."""
    headers = received.headers
    message_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    assert abs(time.time() - int(timestamp)) <= tolerance_s, f"stale timestamp {timestamp}"
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    signed_content = message_id.encode() + b"." + timestamp.encode() + b"." + received.body
    expected = base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest())
    offered = [
        part.split(",", 1)[1].encode()
        for part in headers["webhook-signature"].split(" ")
        if part.startswith("v1,")
    ]
    assert any(hmac.compare_digest(expected, sig) for sig in offered), "no valid signature"


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Receiver:
    """Answers `status` to every POST after `delay_s`, recording each request first."""

    def __init__(self, *, status: int = 204, delay_s: float = 0.0) -> None:
        # The port stays bound while the receiver is down (bound, not listening: connections
        # are refused), so nothing else on the machine can take it during a long outage.
        self._reserved: socket.socket | None = _bound(0)
        self.port: int = self._reserved.getsockname()[1]
        self.status = status
        self.delay_s = delay_s
        self.received: list[Received] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/mailbox"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    receiver.in_flight += 1
                try:
                    time.sleep(receiver.delay_s)
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._reserved or _bound(self.port)
        self._reserved = None
        server.server_activate()
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._reserved = _bound(self.port)

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.json().get("type") == event_type]
