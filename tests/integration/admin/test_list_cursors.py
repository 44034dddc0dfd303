"""The operators' notification list pages with the one signed cursor codec (cursors.py).

Its cursors were unsigned base64 of (created_at, id) before issue 15: anyone could forge a
position. Now they carry the same MAC as the portal's and the audit trail's, bound to the
list's status and channels, and anything else in `cursor` is a 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from litestar.testing import AsyncTestClient

from mailbox_service.admin.service import list_digest
from mailbox_service.cursors import Position, filters_digest
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.wiring.services import Services
from notify_fixtures import make_pending, store_document

BASE = "/v1/admin/notifications"
EMAIL_FAILED: dict[str, Any] = {"status": "failed", "channel": "email", "limit": 1}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _two_failures(services: Services, account: str) -> list[dict[str, Any]]:
    docs = [await store_document(services, account, notify=False) for _ in range(2)]
    for doc in docs:
        await make_pending(services, doc["_id"], "email", status="failed", attempts=6, error="x")
    return docs


async def _first_page(client: AsyncTestClient[Any], key: str) -> dict[str, Any]:
    page = await client.get(BASE, params=EMAIL_FAILED, headers=auth(key))
    assert page.status_code == 200, page.text
    body: dict[str, Any] = page.json()
    assert body["next_cursor"], "two failures were stored: a second page must exist"
    return body


async def _refused(client: AsyncTestClient[Any], key: str, params: dict[str, Any]) -> str:
    response = await client.get(BASE, params=params, headers=auth(key))
    assert response.status_code == 400, (params, response.text)
    error = response.json()["error"]
    assert error["field"] == "cursor"
    message: str = error["message"]
    assert message.startswith("cursor: ")
    return message


async def test_the_admin_cursor_is_signed_with_the_services_key(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    await _two_failures(services, paperless_account)
    body = await _first_page(client, admin_key)
    last = body["items"][-1]
    digest = list_digest("failed", ("email",))
    position = services.cursors.decode(body["next_cursor"], digest)
    assert position.id == last["document_id"]
    created = dt.datetime.fromisoformat(last["created_at"].replace("Z", "+00:00"))
    assert position.sort_time == created
    follow = {**EMAIL_FAILED, "cursor": body["next_cursor"]}
    second = await client.get(BASE, params=follow, headers=auth(admin_key))
    assert second.status_code == 200, second.text
    assert second.json()["items"][0]["document_id"] != last["document_id"]


async def test_a_tampered_admin_cursor_is_a_400_naming_cursor(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    await _two_failures(services, paperless_account)
    cursor = (await _first_page(client, admin_key))["next_cursor"]
    payload, mac = cursor.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for tampered in (f"{flipped}.{mac}", f"{payload}.{mac[::-1]}", cursor[:-3], cursor + "x"):
        message = await _refused(client, admin_key, {**EMAIL_FAILED, "cursor": tampered})
        assert "not a cursor issued by this service" in message


async def test_a_forged_position_in_the_old_unsigned_format_is_refused(
    client: AsyncTestClient[Any], admin_key: str
) -> None:
    far_future = json.dumps(["2999-01-01T00:00:00+00:00", "f" * 32]).encode()
    forged = base64.urlsafe_b64encode(far_future).rstrip(b"=").decode()
    await _refused(client, admin_key, {**EMAIL_FAILED, "cursor": forged})


async def test_a_cursor_only_continues_the_list_and_filters_it_was_made_for(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    docs = await _two_failures(services, paperless_account)
    cursor = (await _first_page(client, admin_key))["next_cursor"]
    for other in ({"status": "failed"}, {"status": "sent", "channel": "email"}):
        message = await _refused(client, admin_key, {**other, "cursor": cursor})
        assert "other filters" in message
    # Same key, another list: a portal inbox cursor names a position the admin list would
    # accept if only the signature were checked.
    inbox = services.cursors.encode(
        Position(dt.datetime.now(dt.UTC), docs[0]["_id"]),
        filters_digest(ListFilters().canonical()),
    )
    message = await _refused(client, admin_key, {**EMAIL_FAILED, "cursor": inbox})
    assert "other filters" in message
