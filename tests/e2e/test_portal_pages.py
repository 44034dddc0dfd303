"""The portal's pages over HTTP (no browser): demo-mode gate, sign-in, headers, redirects."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import jwt
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import cli
from mailbox_service.portal.controller import safe_next
from mailbox_service.portal.demo_users import DEMO_USERS
from mailbox_service.portal.pages import VENDOR_SOCKET_IO
from mailbox_service.settings import Settings
from mailbox_service.wiring.app import create_litestar
from mailbox_service.wiring.services import Services

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
async def portal(settings: Settings, services: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    """The HTTP app with the demo portal on, sharing the session's services."""
    app = create_litestar(msgspec.structs.replace(settings, demo_portal=True), services=services)
    async with AsyncTestClient(app=app) as client:
        yield client


def token_in(location: str) -> str:
    fragment = location.partition("#")[2]
    match = re.fullmatch(r"access_token=([\w.-]+)", fragment)
    assert match, location
    return match.group(1)


async def test_nothing_below_portal_when_demo_mode_is_off(client: Any, settings: Settings) -> None:
    assert settings.demo_portal is False  # the default
    for path in ("/portal/", "/portal/sign-in", "/portal/static/portal.css", "/portal/documents/x"):
        assert (await client.get(path)).status_code == 404, path
    posted = await client.post("/portal/sign-in", content="user=alice", headers=FORM)
    assert posted.status_code == 404


async def test_sign_in_page_lists_the_demo_users(portal: AsyncTestClient[Any]) -> None:
    response = await portal.get("/portal/sign-in")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    for user in DEMO_USERS:
        assert f'id="user-{user.sub}"' in page
        assert user.name in page
        assert ", ".join(user.accounts) in page
    # Every field has a label (accessibility), and the form posts back to the portal.
    assert page.count("<label for=") == len(DEMO_USERS)
    assert 'action="/portal/sign-in"' in page


async def test_sign_in_mints_the_same_token_as_tokens_mint(
    portal: AsyncTestClient[Any], services: Services
) -> None:
    bob = DEMO_USERS[1]
    response = await portal.post(
        "/portal/sign-in", content=f"user={bob.sub}", headers=FORM, follow_redirects=False
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/portal/#access_token=")
    token = token_in(location)
    user = await services.portal_tokens.verify(token)
    assert (user.sub, user.accounts) == (bob.sub, bob.accounts)

    args = ["tokens", "mint", "--sub", bob.sub]
    for account in bob.accounts:
        args += ["--account", account]
    minted = cli(*args).stdout.strip()
    ours, theirs = (jwt.decode(t, options={"verify_signature": False}) for t in (token, minted))
    assert ours.keys() == theirs.keys()
    assert {k: v for k, v in ours.items() if k not in {"iat", "exp"}} == {
        k: v for k, v in theirs.items() if k not in {"iat", "exp"}
    }
    assert ours["exp"] - ours["iat"] == theirs["exp"] - theirs["iat"] == 3600
    assert jwt.get_unverified_header(token) == jwt.get_unverified_header(minted)


async def test_sign_in_refuses_someone_who_is_not_a_demo_user(
    portal: AsyncTestClient[Any],
) -> None:
    for body in ("user=mallory", "", "next=/portal/"):
        response = await portal.post(
            "/portal/sign-in", content=body, headers=FORM, follow_redirects=False
        )
        assert response.status_code == 400, body
        assert "location" not in response.headers
        assert "Choose one of the demo users" in response.text


async def test_sign_in_without_a_secret_says_why(settings: Settings, services: Services) -> None:
    unsigned = msgspec.structs.replace(
        settings,
        demo_portal=True,
        auth=msgspec.structs.replace(settings.auth, jwt_secret=""),
    )
    # The page mints with the services' settings: lend it settings without a secret.
    original = services.settings
    services.settings = unsigned
    try:
        app = create_litestar(unsigned, services=services)
        async with AsyncTestClient(app=app) as client:
            response = await client.post(
                "/portal/sign-in", content="user=alice", headers=FORM, follow_redirects=False
            )
    finally:
        services.settings = original
    assert response.status_code == 503
    assert "MAILBOX_AUTH_JWT_SECRET" in unescape(response.text)


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("/portal/documents/0123abcd", "/portal/documents/0123abcd"),
        ("/portal/", "/portal/"),
        ("https://evil.example/", "/portal/"),
        ("//evil.example/portal/", "/portal/"),
        ("/portal/../admin", "/portal/"),
        ("/portal/documents/a?x=1", "/portal/"),
        ("/elsewhere", "/portal/"),
        (None, "/portal/"),
    ],
)
def test_after_sign_in_only_portal_pages(next_path: str | None, expected: str) -> None:
    assert safe_next(next_path) == expected


async def test_sign_in_returns_to_the_page_that_sent_you(portal: AsyncTestClient[Any]) -> None:
    response = await portal.post(
        "/portal/sign-in",
        content="user=alice&next=%2Fportal%2Fdocuments%2Fabc123",
        headers=FORM,
        follow_redirects=False,
    )
    assert response.headers["location"].startswith("/portal/documents/abc123#access_token=")
    page = (await portal.get("/portal/sign-in?next=https://evil.example/")).text
    assert 'name="next" value="/portal/"' in page


async def test_the_reason_for_signing_in_again_is_shown_never_echoed(
    portal: AsyncTestClient[Any],
) -> None:
    expired = (await portal.get("/portal/sign-in?reason=expired")).text
    assert "Your session has expired. Please sign in again." in expired
    odd = (await portal.get("/portal/sign-in?reason=<script>alert(1)</script>")).text
    assert "alert(1)" not in odd
    assert 'id="sign-in-notice"' not in odd


async def test_inbox_page_carries_its_configuration_and_assets(
    portal: AsyncTestClient[Any],
) -> None:
    response = await portal.get("/portal/documents/abc123")
    assert response.status_code == 200
    page = response.text
    config = json.loads(unescape(re.search(r'data-config="([^"]*)"', page).group(1)))  # type: ignore[union-attr]
    assert config["api"] == "/v1/mailbox"
    assert config["socketPath"] == "/socket.io"
    assert config["openDocument"] == "abc123"
    assert config["typeLabels"]["invoice"] == "Invoice"
    assert config["names"] == {user.sub: user.name for user in DEMO_USERS}
    assert 'aria-live="polite"' in page
    assert 'role="tablist"' in page
    for tab in ("All", "Unread", "Invoices", "Letters", "Shipments"):
        assert re.search(rf'role="tab"[^>]*>{tab}\b', page), tab
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any("/portal/static/js/inbox.js?v=" in src for src in scripts)
    # The Socket.IO client is only referenced once scripts/build-portal.sh has fetched it.
    assert ("/portal/static/vendor/socket.io.min.js" in page) == VENDOR_SOCKET_IO.is_file()
    assert "<script>" not in page  # no inline script: the CSP forbids it anyway
    css = await portal.get(re.search(r'href="(/portal/static/portal\.css[^"]*)"', page).group(1))  # type: ignore[union-attr]
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    js = await portal.get("/portal/static/js/inbox.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
