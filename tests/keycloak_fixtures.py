"""A real Keycloak for the identity-provider tests, and a sign-in that goes through its pages.

Loaded as a pytest plugin from conftest.py. Only tests that ask for `keycloak` start it (about
20 s, plus a one-time fetch of the distribution); it stops at the end of the session, unless
MAILBOX_TEST_KEEP_STACK=1 keeps it for the next run like the rest of the stack.

`sign_in_with_code` is the authorization code flow with PKCE as a browser does it: it loads the
login page, posts the username/password form, then the one-time-code form, and takes the code
from the redirect. Plain HTTP, no browser: Keycloak's pages are server-rendered forms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import re
import secrets
import struct
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mailbox_devtools.devstack import Stack
from mailbox_devtools.devstack.keycloak import Keycloak
from mailbox_devtools.devstack.keycloak_realm import (
    PORTAL_CLIENT,
    REALM,
    REDIRECT_URI,
    KeycloakAdmin,
    password_grant,
)
from mailbox_service.settings import Settings

KEEP_STACK_VAR = "MAILBOX_TEST_KEEP_STACK"


@dataclass
class KeycloakRealm:
    """The running server, an admin client, and what the service must be told about it."""

    server: Keycloak
    admin: KeycloakAdmin
    start_s: float
    """How long this session waited for Keycloak (0 when a kept server was reused)."""

    @property
    def issuer(self) -> str:
        return self.server.issuer(REALM)

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    def user(self, prefix: str, **kwargs: Any) -> tuple[str, str]:
        """A new user (unique name) and its password."""
        username = f"{prefix}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        self.admin.create_user(username, password, **kwargs)
        return username, password

    def admin_password_hidden(self, text: str) -> bool:
        """Whether `text` (a command's output) does not show the administrator's password."""
        return self.server.admin_password not in text

    def password_token(self, username: str, password: str) -> str:
        """An access token by the direct access grant (`acr` is `pwd`)."""
        return str(password_grant(self.server.url, username, password)["access_token"])


def _progress(line: str) -> None:
    print(f"[keycloak] {line}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def keycloak(stack: Stack, settings: Settings) -> Iterator[KeycloakRealm]:
    server = Keycloak(stack.config, progress=_progress)
    started = time.monotonic()
    reused = server.is_running() and server.is_ready()
    server.up()
    start_s = 0.0 if reused else time.monotonic() - started
    _progress(f"ready after {start_s:.1f} s" if not reused else "reusing the kept server")
    admin = KeycloakAdmin(server.url, server.admin_password)
    if not admin.realm_exists():
        admin.create_realm(settings.auth.audience)
    try:
        yield KeycloakRealm(server, admin, start_s)
    finally:
        admin.close()
        if os.environ.get(KEEP_STACK_VAR) != "1":
            server.down()


def totp(secret: bytes, at: float | None = None, period: int = 30) -> str:
    """RFC 6238 one-time code (HMAC-SHA1, 6 digits), as an authenticator app computes it."""
    counter = int((time.time() if at is None else at) // period)
    digest = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


def _form_action(page: str, form_id: str) -> str:
    for tag in re.findall(r"<form\b[^>]*>", page):
        if f'id="{form_id}"' in tag:
            found = re.search(r'action="([^"]+)"', tag)
            if found:
                return html.unescape(found[1])
    raise AssertionError(f"no form {form_id!r} on the page:\n{page[:2000]}")


class _Browser:
    """httpx with a cookie jar that, like a browser on localhost, sends `Secure` cookies over
    plain http (Keycloak marks its session cookies Secure)."""

    def __init__(self) -> None:
        self._http = httpx.Client(follow_redirects=False, timeout=30)
        self._cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self._cookies.items())}
        answer = self._http.request(method, url, headers=headers, **kwargs)
        for cookie in answer.cookies.jar:
            self._cookies[cookie.name] = cookie.value or ""
        return answer

    def close(self) -> None:
        self._http.close()


def sign_in_with_code(
    realm: KeycloakRealm, username: str, password: str, otp_secret: bytes, acr: str = "mfa"
) -> str:
    """An access token from the authorization code flow asking for `acr`, signing in with the
    password and then a one-time code."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    endpoint = f"{realm.issuer}/protocol/openid-connect"
    browser = _Browser()
    try:
        page = browser.request(
            "GET",
            f"{endpoint}/auth",
            params={
                "client_id": PORTAL_CLIENT,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "acr_values": acr,
                "state": secrets.token_urlsafe(8),
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            },
        )
        assert page.status_code == 200, page.text[:500]
        page = browser.request(
            "POST",
            _form_action(page.text, "kc-form-login"),
            data={"username": username, "password": password},
        )
        assert page.status_code == 200, page.text[:500]
        done = browser.request(
            "POST", _form_action(page.text, "kc-otp-login-form"), data={"otp": totp(otp_secret)}
        )
        assert done.status_code == 302, done.text[:500]
        query = urllib.parse.parse_qs(urllib.parse.urlparse(done.headers["location"]).query)
        tokens = browser.request(
            "POST",
            f"{endpoint}/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "client_id": PORTAL_CLIENT,
                "code_verifier": verifier,
            },
        )
        assert tokens.status_code == 200, tokens.text[:500]
        return str(tokens.json()["access_token"])
    finally:
        browser.close()
