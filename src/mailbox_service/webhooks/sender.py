"""One HTTP POST to a receiver, to the address the URL policy just checked.

The host is resolved and checked at every attempt (url_policy.check), and the connection goes
to that checked address, with the URL's host name in `Host` and as the TLS server name (so the
certificate is still verified against the name). A second DNS lookup by the HTTP client, which
an attacker's DNS could answer differently (rebinding), never happens. Redirects are not
followed: a 3xx is an answer like any other non-2xx (retried).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from mailbox_service.webhooks.url_policy import Target, UrlRefused, check

ANSWER_PREVIEW_BYTES = 1024
"""How much of a receiver's answer is kept (shown by `webhooks test`, stored with an attempt)."""


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


def pinned_url(target: Target) -> str:
    parts = urlsplit(target.url)
    address = target.address
    host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    return urlunsplit((parts.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))


def host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    name = f"[{target.host}]" if ":" in target.host else target.host
    return name if target.port == default else f"{name}:{target.port}"


class WebhookSender:
    """Thread-safe (one httpx client, shared by the worker's webhook threads)."""

    def __init__(self, *, timeout_s: float, allow_private: bool, pool: int = 16) -> None:
        self.allow_private = allow_private
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
            headers={"user-agent": "mailbox-service-webhooks/1"},
        )

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        try:
            target = check(url, allow_private=self.allow_private)
        except UrlRefused as exc:
            return Answer(None, f"refused: {exc}", time.perf_counter() - started)
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            with self.client.stream(
                "POST",
                pinned_url(target),
                content=body,
                headers={**headers, "host": host_header(target)},
                extensions=extensions,
            ) as response:
                preview = b""
                for chunk in response.iter_bytes():
                    preview += chunk
                    if len(preview) >= ANSWER_PREVIEW_BYTES:
                        break
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            return Answer(None, error, time.perf_counter() - started)
        text = preview[:ANSWER_PREVIEW_BYTES].decode("utf-8", "replace")
        return Answer(response.status_code, None, time.perf_counter() - started, text)

    def close(self) -> None:
        self.client.close()
