"""Business status updates from the sender, on the real stack: `PATCH /v1/documents/{id}` and
`PATCH /v1/documents?source_ref=`.

Validated by the type (422 naming `status`, listing the allowed ones), idempotent, never
overwritten by an older `status_at`, 404 for another source's document; a real change records
`document.status_changed`, is audited, shows in the portal and reaches open inboxes live.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import socketio
from litestar.testing import AsyncTestClient

from app_fixtures import LiveServer, invoice_metadata, post_document, unique
from audit_fixtures import audit_entries
from mailbox_fixtures import bearer, letter_metadata, portal_token
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def at(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
async def sender(services: Services) -> tuple[str, str]:
    """(source, key) of a sender of this module's own."""
    key, secret = await services.api_keys.create(unique("erp"), ["ingest"])
    return key.source, secret


async def send(client: AsyncTestClient[Any], key: str, metadata: dict[str, Any]) -> dict[str, Any]:
    response = await post_document(client, key, metadata)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def patch(client: AsyncTestClient[Any], key: str, document_id: str, body: Any) -> Any:
    return await client.patch(f"/v1/documents/{document_id}", json=body, headers=bearer(key))


async def status_events(services: Services, document_id: str) -> list[dict[str, Any]]:
    found = services.database.sender_events.find(
        {"document_id": document_id, "type": "document.status_changed"}
    )
    return await found.sort("_id", 1).to_list()


async def test_paid_is_stored_recorded_and_audited(
    client: AsyncTestClient[Any], services: Services, sender: tuple[str, str]
) -> None:
    source, key = sender
    doc = await send(client, key, invoice_metadata(unique("acct"), notify=False))
    response = await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "changed"
    assert body["document"]["id"] == doc["id"]
    assert body["document"]["status"] == "paid"
    assert body["document"]["status_at"] == at(T0)

    shown = (await client.get(f"/v1/documents/{doc['id']}", headers=bearer(key))).json()
    assert (shown["status"], shown["status_at"]) == ("paid", at(T0))

    [event] = await status_events(services, doc["id"])
    assert event["source"] == source
    assert event["source_ref"] == doc["source_ref"]
    assert event["data"] == {"status": "paid", "previous": "open", "status_at": T0}

    [entry] = await audit_entries(
        services, {"action": "document.status_changed", "document_id": doc["id"]}, 1
    )
    assert entry["actor"]["kind"] == "key"
    assert entry["actor"]["source"] == source
    assert entry["account_id"] == doc["account_id"]
    assert entry["details"] == {"status": "paid", "previous": "open", "status_at": T0.isoformat()}


async def test_repeats_change_nothing_and_older_updates_are_stale(
    client: AsyncTestClient[Any], services: Services, sender: tuple[str, str]
) -> None:
    _, key = sender
    doc = await send(client, key, invoice_metadata(unique("acct"), notify=False))
    paid = {"status": "paid", "status_at": "2026-11-02T10:00:00+01:00"}  # 09:00Z
    assert (await patch(client, key, doc["id"], paid)).json()["outcome"] == "changed"

    again = await patch(client, key, doc["id"], paid)
    assert again.status_code == 200
    assert again.json()["outcome"] == "unchanged"
    # The same instant written another way is the same update.
    same = await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
    assert same.json()["outcome"] == "unchanged"

    older = {"status": "overdue", "status_at": at(T0 - dt.timedelta(days=1))}
    stale = await patch(client, key, doc["id"], older)
    assert stale.status_code == 200
    assert stale.json()["outcome"] == "stale"
    assert stale.json()["document"]["status"] == "paid"
    # An equal time with another status does not win either: it is not newer.
    tie = await patch(client, key, doc["id"], {"status": "cancelled", "status_at": at(T0)})
    assert tie.json()["outcome"] == "stale"

    # The same status reported later moves `status_at` on, without telling anyone.
    later = T0 + dt.timedelta(hours=1)
    moved = await patch(client, key, doc["id"], {"status": "paid", "status_at": at(later)})
    assert moved.json()["outcome"] == "unchanged"
    assert moved.json()["document"]["status_at"] == at(later)
    # ...so an update between the two reports is now stale.
    between = {"status": "open", "status_at": at(T0 + dt.timedelta(minutes=30))}
    assert (await patch(client, key, doc["id"], between)).json()["outcome"] == "stale"

    newer = await patch(
        client, key, doc["id"], {"status": "open", "status_at": at(later + dt.timedelta(days=1))}
    )
    assert newer.json()["outcome"] == "changed"
    events = await status_events(services, doc["id"])
    assert [(e["data"]["previous"], e["data"]["status"]) for e in events] == [
        ("open", "paid"),
        ("paid", "open"),
    ]


async def test_concurrent_identical_updates_record_one_change(
    client: AsyncTestClient[Any], services: Services, sender: tuple[str, str]
) -> None:
    _, key = sender
    doc = await send(client, key, invoice_metadata(unique("acct"), notify=False))
    body = {"status": "cancelled", "status_at": at(T0)}
    answers = await asyncio.gather(*(patch(client, key, doc["id"], body) for _ in range(8)))
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["changed"] + ["unchanged"] * 7
    assert len(await status_events(services, doc["id"])) == 1


async def test_by_source_ref(
    client: AsyncTestClient[Any], services: Services, sender: tuple[str, str]
) -> None:
    _, key = sender
    meta = invoice_metadata(unique("acct"), notify=False)
    doc = await send(client, key, meta)
    response = await client.patch(
        "/v1/documents",
        params={"source_ref": meta["source_ref"]},
        json={"status": "overdue", "status_at": at(T0)},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "changed"
    assert response.json()["document"]["id"] == doc["id"]
    missing = await client.patch(
        "/v1/documents",
        params={"source_ref": unique("nothing")},
        json={"status": "paid", "status_at": at(T0)},
        headers=bearer(key),
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "source_ref"


async def test_shipment_statuses(client: AsyncTestClient[Any], sender: tuple[str, str]) -> None:
    _, key = sender
    meta = {
        "type": "shipment_document",
        "source_ref": unique("ref"),
        "account_id": unique("acct"),
        "notify": False,
        "attributes": {"shipment_number": unique("SHP"), "document_kind": "waybill"},
    }
    doc = await send(client, key, meta)
    shown = (await client.get(f"/v1/documents/{doc['id']}", headers=bearer(key))).json()
    assert shown["status"] == "created"
    moved = await patch(client, key, doc["id"], {"status": "in_transit", "status_at": at(T0)})
    assert moved.json()["document"]["status"] == "in_transit"
    wrong = await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
    assert wrong.status_code == 422
    assert "in_transit" in wrong.json()["error"]["message"]


async def test_another_sources_document_is_a_404(
    client: AsyncTestClient[Any], services: Services, sender: tuple[str, str]
) -> None:
    _, key = sender
    meta = invoice_metadata(unique("acct"), notify=False)
    doc = await send(client, key, meta)
    _, intruder = await services.api_keys.create(unique("other"), ["ingest"])
    body = {"status": "paid", "status_at": at(T0)}
    by_id = await patch(client, intruder, doc["id"], body)
    assert by_id.status_code == 404
    by_ref = await client.patch(
        "/v1/documents",
        params={"source_ref": meta["source_ref"]},
        json=body,
        headers=bearer(intruder),
    )
    assert by_ref.status_code == 404
    shown = (await client.get(f"/v1/documents/{doc['id']}", headers=bearer(key))).json()
    assert shown["status"] == "open"
    assert await status_events(services, doc["id"]) == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"status": "shipped", "status_at": at(T0)},
            "status",
            "allowed: cancelled, open, overdue, paid",
        ),
        ({"status": "", "status_at": at(T0)}, "status", ""),
        ({"status_at": at(T0)}, "status", ""),
        ({"status": "paid"}, "status_at", ""),
        ({"status": "paid", "status_at": "2026-11-02T09:00:00"}, "status_at", "offset"),
        ({"status": "paid", "status_at": "yesterday"}, "status_at", ""),
        ({"status": "paid", "status_at": "2099-01-01T00:00:00Z"}, "status_at", "ahead"),
        ({"status": 7, "status_at": at(T0)}, "status", ""),
        # A number is not a time here (no silent reading as seconds since 1970).
        ({"status": "paid", "status_at": 0}, "status_at", "datetime"),
    ],
)
async def test_invalid_updates_are_422_naming_the_field(
    client: AsyncTestClient[Any],
    services: Services,
    sender: tuple[str, str],
    body: dict[str, Any],
    field: str,
    words: str,
) -> None:
    _, key = sender
    doc = await send(client, key, invoice_metadata(unique("acct"), notify=False))
    response = await patch(client, key, doc["id"], body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]
    shown = (await client.get(f"/v1/documents/{doc['id']}", headers=bearer(key))).json()
    assert shown["status"] == "open"
    assert await status_events(services, doc["id"]) == []


async def test_a_type_without_statuses_is_422(
    client: AsyncTestClient[Any], sender: tuple[str, str]
) -> None:
    _, key = sender
    doc = await send(client, key, letter_metadata(unique("acct"), notify=False))
    response = await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "status"
    assert (
        "contract_letter documents have no business status" in response.json()["error"]["message"]
    )


async def test_portal_list_and_detail_show_the_status(
    client: AsyncTestClient[Any], settings: Settings, sender: tuple[str, str]
) -> None:
    _, key = sender
    account = unique("acct")
    doc = await send(client, key, invoice_metadata(account, notify=False))
    token = bearer(portal_token(settings, account))
    listed = (await client.get("/v1/mailbox/documents", headers=token)).json()["items"]
    assert [(i["id"], i["status"], i["status_at"]) for i in listed] == [(doc["id"], "open", None)]
    await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
    listed = (await client.get("/v1/mailbox/documents", headers=token)).json()["items"]
    assert [(i["status"], i["status_at"]) for i in listed] == [("paid", at(T0))]
    detail = (await client.get(f"/v1/mailbox/documents/{doc['id']}", headers=token)).json()
    assert (detail["status"], detail["status_at"]) == ("paid", at(T0))


async def test_document_updated_reaches_an_open_inbox(
    client: AsyncTestClient[Any],
    settings: Settings,
    live_server: LiveServer,
    sender: tuple[str, str],
) -> None:
    _, key = sender
    account = unique("acct")
    doc = await send(client, key, invoice_metadata(account, notify=False))
    updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox = socketio.AsyncClient(reconnection=False)
    inbox.on("document.updated", updates.put_nowait)
    await inbox.connect(
        live_server.url,
        auth={"token": portal_token(settings, account)},
        transports=["websocket"],
        wait_timeout=5,
    )
    try:
        await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
        event = await asyncio.wait_for(updates.get(), 15)
        assert event["id"] == doc["id"]
        assert event["account_id"] == account
        assert (event["status"], event["status_at"]) == ("paid", at(T0))
        assert event["read_at"] is None
        # A repeat is no change: no event.
        await patch(client, key, doc["id"], {"status": "paid", "status_at": at(T0)})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(updates.get(), 1.0)
    finally:
        await inbox.disconnect()
