"""One HTTP POST to a receiver, to the address the URL policy just checked.

The host is resolved and checked at every attempt (url_policy.check), and the connection goes
to that checked address, with the URL's host name in `Host` and as the TLS server name (so the
certificate is still verified against the name). A second DNS lookup by an HTTP client, which
an attacker's DNS could answer differently (rebinding), never happens. Redirects are not
followed: a 3xx is an answer like any other non-2xx (retried).

The standard library's http.client, with one kept connection per receiver address and worker
thread: it costs a fifth of the CPU per request of a general-purpose client (measured: 0.12
against 0.66 ms), and on two shared cores the worker's CPU is what webhooks take from email.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailbox_service.webhooks.url_policy import Target, UrlRefused, check

ANSWER_PREVIEW_BYTES = 1024
"""How much of a receiver's answer is kept (shown by `webhooks test`, stored with an attempt)."""
USER_AGENT = "mailbox-service-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What one attempt got: a status code, or an error before any answer."""

    status_code: int | None
    error: str | None
    seconds: float
    body: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    name = f"[{target.host}]" if ":" in target.host else target.host
    return name if target.port == default else f"{name}:{target.port}"


def request_path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address, verified against a given server name."""

    def __init__(
        self, address: str, port: int, server_name: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(address, port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self.server_name
        )


ConnectionKey = tuple[str, str, int, str]
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""What a kept connection the receiver closed while idle fails with, before any answer."""


class WebhookSender:
    """Thread-safe: each worker thread keeps its own connections."""

    def __init__(self, *, timeout_s: float, allow_private: bool, pool: int = 16) -> None:
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.pool = pool
        self.tls = ssl.create_default_context()
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connections(self) -> dict[ConnectionKey, http.client.HTTPConnection]:
        found: dict[ConnectionKey, http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if found is None:
            found = self._local.connections = {}
        return found

    def _connection(self, target: Target) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, reused)."""
        key = (target.scheme, str(target.address), target.port, target.host)
        connections = self._connections()
        existing = connections.get(key)
        if existing is not None:
            return existing, True
        address = str(target.address)
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = PinnedHTTPSConnection(
                address, target.port, target.host, self.timeout_s, self.tls
            )
        else:
            connection = http.client.HTTPConnection(address, target.port, timeout=self.timeout_s)
        if len(connections) >= self.pool:
            self._drop(connections, next(iter(connections)))
        connections[key] = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _drop(
        self, connections: dict[ConnectionKey, http.client.HTTPConnection], key: ConnectionKey
    ) -> None:
        connection = connections.pop(key, None)
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        try:
            target = check(url, allow_private=self.allow_private)
        except UrlRefused as exc:
            return Answer(None, f"refused: {exc}", time.perf_counter() - started)
        key = (target.scheme, str(target.address), target.port, target.host)
        sent = {**headers, "host": host_header(target), "user-agent": USER_AGENT}
        path = request_path(url)
        while True:
            connection, reused = self._connection(target)
            try:
                connection.request("POST", path, body=body, headers=sent)
                response = connection.getresponse()
                preview = response.read(ANSWER_PREVIEW_BYTES)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(self._connections(), key)
                if reused and isinstance(exc, STALE):
                    continue  # the receiver closed an idle kept connection: once more, fresh
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
                return Answer(None, error, time.perf_counter() - started)
            if not response.isclosed() or response.will_close:
                self._drop(self._connections(), key)  # an unread rest, or the receiver's wish
            text = preview.decode("utf-8", "replace")
            return Answer(response.status, None, time.perf_counter() - started, text)

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()
