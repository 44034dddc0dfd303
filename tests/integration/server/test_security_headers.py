"""Security headers on every HTTP answer: JSON, errors, files (ETag/304 kept), portal pages,
Engine.IO long-polling and a 404 for a route that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import unique
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.asgi import create_app
from mailbox_service.settings import Settings

ALWAYS = {
    "x-content-type-options": "nosniff",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def assert_secured(response: httpx.Response, *, no_store: bool = True) -> None:
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (name, response.request.url)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    if no_store:
        assert response.headers["cache-control"] == "no-store", response.request.url


@pytest.fixture(scope="module")
async def demo(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """The whole ASGI app (create_app) with the demo portal on."""
    app = create_app(msgspec.structs.replace(settings, demo_portal=True))
    async with AsyncTestClient(app=app, timeout=30) as client:
        yield client


async def test_json_answers_and_errors_carry_the_headers(
    client: Any, settings: Settings, ingest_key: str
) -> None:
    account = unique("hdr")
    token = bearer(portal_token(settings, account))
    answers = [
        await client.get("/v1/mailbox/documents", headers=token),  # 200
        await client.get("/v1/mailbox/documents"),  # 401
        await client.get("/v1/mailbox/documents/nope", headers=token),  # 404
        await client.get("/v1/mailbox/documents?limit=0", headers=token),  # 400
        await client.get("/no/such/route"),  # 404 from the router
        await client.get("/health/live"),
        await client.get("/v1/document-types", headers=bearer(ingest_key)),
    ]
    assert [a.status_code for a in answers] == [200, 401, 404, 400, 404, 200, 200]
    for answer in answers:
        assert_secured(answer)


async def test_downloads_are_no_store_and_keep_etag_and_304(
    client: Any, settings: Settings, ingest_key: str
) -> None:
    account = unique("hdr")
    document_id = await ingest(client, ingest_key, account)
    token = bearer(portal_token(settings, account))
    url = f"/v1/mailbox/documents/{document_id}/content"
    full = await client.get(url, headers=token)
    assert full.status_code == 200
    assert_secured(full)
    # The download's own sandbox policy stays, with framing forbidden added to it.
    assert full.headers["content-security-policy"] == "sandbox; frame-ancestors 'none'"
    etag = full.headers["etag"]
    again = await client.get(url, headers={**token, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert_secured(again)
    part = await client.get(url, headers={**token, "Range": "bytes=0-9"})
    assert part.status_code == 206
    assert_secured(part)


async def test_portal_pages_and_static_files_carry_the_headers(demo: Any) -> None:
    page = await demo.get("/portal/sign-in")
    assert page.status_code == 200
    assert_secured(page)
    # The page's own, stricter policy is kept whole.
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    static = await demo.get("/portal/static/portal.css")
    assert static.status_code == 200
    assert_secured(static, no_store=False)  # assets may be revalidated, not stored blindly
    assert "no-cache" in static.headers["cache-control"]


async def test_engineio_polling_answers_carry_the_headers(client: Any) -> None:
    handshake = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert handshake.status_code == 200
    assert_secured(handshake, no_store=False)
    assert "frame-ancestors 'none'" in handshake.headers["content-security-policy"]
