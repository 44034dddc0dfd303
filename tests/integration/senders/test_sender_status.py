"""The sender's status API on the real stack: `GET /v1/documents/{id}` and `?source_ref=`.

A source sees only its own documents (another's answers 404, as a missing one); the view shows
delivery with its history (after a print fallback too), each channel, first read and download
(never who), and the business status.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import invoice_metadata, post_document, unique
from mailbox_fixtures import bearer, letter_metadata, portal_token
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services

STATUS_FIELDS = {
    "id",
    "source_ref",
    "type",
    "account_id",
    "created_at",
    "delivery",
    "channels",
    "first_read_at",
    "first_downloaded_at",
    "status",
    "status_at",
}


async def source_key(services: Services) -> str:
    _, secret = await services.api_keys.create(unique("sender"), ["ingest"])
    return secret


@pytest.fixture(scope="module")
async def sender(services: Services) -> str:
    return await source_key(services)


@pytest.fixture(scope="module")
async def other_sender(services: Services) -> str:
    return await source_key(services)


async def send(client: AsyncTestClient[Any], key: str, metadata: dict[str, Any]) -> dict[str, Any]:
    response = await post_document(client, key, metadata)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def status(client: AsyncTestClient[Any], key: str, document_id: str) -> Any:
    return await client.get(f"/v1/documents/{document_id}", headers=bearer(key))


async def test_status_of_a_new_document(
    client: AsyncTestClient[Any], sender: str, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account, notify=False)
    sent = await send(client, sender, meta)
    response = await status(client, sender, sent["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == STATUS_FIELDS
    assert body["id"] == sent["id"]
    assert body["source_ref"] == meta["source_ref"]
    assert body["type"] == "invoice"
    assert body["account_id"] == paperless_account
    assert body["created_at"] == sent["created_at"]
    assert body["delivery"] == {
        "mode": "digital",
        "reason": None,
        "changes": [
            {"at": sent["created_at"], "mode": "digital", "reason": None, "cause": "ingest"}
        ],
    }
    # notify=false: both channels were skipped at ingest, nothing was attempted.
    for channel in ("email", "realtime"):
        assert body["channels"][channel]["status"] == "skipped"
        assert body["channels"][channel]["attempts"] == 0
        assert body["channels"][channel]["sent_at"] is None
    assert body["first_read_at"] is None
    assert body["first_downloaded_at"] is None
    assert body["status"] == "open"  # the invoice's initial status
    assert body["status_at"] is None


async def test_print_at_ingest_shows_its_reason(client: AsyncTestClient[Any], sender: str) -> None:
    no_consent = unique("acct")
    sent = await send(client, sender, letter_metadata(no_consent, notify=False))
    body = (await status(client, sender, sent["id"])).json()
    reason = "account has no paperless consent"
    assert body["delivery"]["mode"] == "print"
    assert body["delivery"]["reason"] == reason
    assert [c["mode"] for c in body["delivery"]["changes"]] == ["print"]
    assert body["delivery"]["changes"][0]["reason"] == reason
    assert body["status"] is None  # a contract letter has no business status


async def test_delivery_changes_after_a_print_fallback(
    client: AsyncTestClient[Any], services: Services, sender: str, paperless_account: str
) -> None:
    sent = await send(client, sender, invoice_metadata(paperless_account, notify=False))
    fallback = PrintFallback(services.document_status, services.sender_events)
    reason = "550 5.1.1 recipient address rejected"
    assert await fallback.require_print(sent["id"], reason, "relay_refused")

    body = (await status(client, sender, sent["id"])).json()
    assert body["delivery"]["mode"] == "print"
    assert body["delivery"]["reason"] == reason
    first, second = body["delivery"]["changes"]
    assert first == {
        "at": sent["created_at"],
        "mode": "digital",
        "reason": None,
        "cause": "ingest",
    }
    assert second["mode"] == "print"
    assert second["reason"] == reason
    assert second["cause"] == "relay_refused"
    assert second["at"] >= first["at"]


async def test_first_read_and_download_are_shown_but_not_who(
    client: AsyncTestClient[Any], settings: Settings, sender: str, paperless_account: str
) -> None:
    sent = await send(client, sender, invoice_metadata(paperless_account, notify=False))
    reader = unique("reader")
    token = bearer(portal_token(settings, paperless_account, sub=reader))
    url = f"/v1/mailbox/documents/{sent['id']}"
    assert (await client.post(f"{url}/read", headers=token)).status_code == 200
    assert (await client.get(f"{url}/content", headers=token)).status_code == 200

    body = (await status(client, sender, sent["id"])).json()
    first_read = body["first_read_at"]
    assert first_read is not None
    assert body["first_downloaded_at"] is not None
    assert reader not in str(body)
    assert paperless_account.lower() + "@" not in str(body)  # nor the customer's address

    # Marked unread and read again: the first read stays the first.
    assert (await client.delete(f"{url}/read", headers=token)).status_code == 200
    assert (await client.post(f"{url}/read", headers=token)).status_code == 200
    assert (await status(client, sender, sent["id"])).json()["first_read_at"] == first_read


async def test_find_by_source_ref(
    client: AsyncTestClient[Any], sender: str, other_sender: str, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account, notify=False)
    sent = await send(client, sender, meta)
    found = await client.get(
        "/v1/documents", params={"source_ref": meta["source_ref"]}, headers=bearer(sender)
    )
    assert found.status_code == 200, found.text
    items = found.json()["items"]
    assert [item["id"] for item in items] == [sent["id"]]
    assert set(items[0]) == STATUS_FIELDS

    unknown = await client.get(
        "/v1/documents", params={"source_ref": unique("nothing")}, headers=bearer(sender)
    )
    assert unknown.json() == {"items": []}
    # The same reference from another source is another source's business: nothing.
    theirs = await client.get(
        "/v1/documents", params={"source_ref": meta["source_ref"]}, headers=bearer(other_sender)
    )
    assert theirs.status_code == 200
    assert theirs.json() == {"items": []}


async def test_another_sources_document_is_a_404_like_a_missing_one(
    client: AsyncTestClient[Any], sender: str, other_sender: str, paperless_account: str
) -> None:
    sent = await send(client, sender, invoice_metadata(paperless_account, notify=False))
    theirs = await status(client, other_sender, sent["id"])
    missing = await status(client, other_sender, "0" * 32)
    assert theirs.status_code == missing.status_code == 404
    strip = [
        {k: v for k, v in r.json()["error"].items() if k != "request_id"} for r in (theirs, missing)
    ]
    assert strip[0] == strip[1]
    assert strip[0]["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "status_code"),
    [
        ({}, 400),
        ({"source_ref": ""}, 400),
        ({"source_ref": "has space"}, 400),
        ({"source_ref": "x" * 201}, 400),
    ],
)
async def test_bad_source_ref_is_a_400_naming_it(
    client: AsyncTestClient[Any], sender: str, params: dict[str, str], status_code: int
) -> None:
    response = await client.get("/v1/documents", params=params, headers=bearer(sender))
    assert response.status_code == status_code, response.text
    assert response.json()["error"]["field"] == "source_ref"


async def test_credentials_are_required(
    client: AsyncTestClient[Any], services: Services, paperless_account: str, sender: str
) -> None:
    sent = await send(client, sender, invoice_metadata(paperless_account, notify=False))
    assert (await client.get(f"/v1/documents/{sent['id']}")).status_code == 401
    _, admin = await services.api_keys.create(unique("ops"), ["admin"])
    assert (await status(client, admin, sent["id"])).status_code == 403


async def test_changes_is_not_taken_for_a_document_id(
    client: AsyncTestClient[Any], sender: str
) -> None:
    response = await client.get("/v1/documents/changes", headers=bearer(sender))
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "next"}
