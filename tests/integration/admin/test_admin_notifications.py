"""The operator API and CLI for notifications, on FerretDB (its aggregation subset included).

No worker runs in this module, so the states set up here stay as they are while asserted.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from litestar.testing import AsyncTestClient

from app_fixtures import cli, unique
from mailbox_service.clock import utcnow
from mailbox_service.wiring.services import Services
from notify_fixtures import channel_state, make_pending, store_document

BASE = "/v1/admin/notifications"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _fail(services: Services, document_id: str, error: str) -> None:
    await make_pending(services, document_id, "email", status="failed", attempts=6, error=error)


async def test_admin_routes_need_an_admin_key(
    client: AsyncTestClient[Any], ingest_key: str
) -> None:
    assert (await client.get(f"{BASE}/stats")).status_code == 401
    forbidden = await client.get(f"{BASE}/stats", headers=auth(ingest_key))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    resend = await client.post(f"{BASE}/x/resend?channel=email", headers=auth(ingest_key))
    assert resend.status_code == 403


async def test_stats_count_channel_status_type_and_day(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    # Only states no worker or sweep will change while we look (sent, failed, skipped).
    since = utcnow() - dt.timedelta(milliseconds=1)
    await store_document(services, paperless_account, notify=False)
    await store_document(
        services,
        paperless_account,
        notify=False,
        type="contract_letter",
        attributes={"contract_number": "C-1", "letter_kind": "welcome"},
    )
    delivered = await store_document(services, paperless_account, notify=False)
    for channel in ("email", "realtime"):
        await make_pending(services, delivered["_id"], channel, status="sent", attempts=1)
    failed = await store_document(services, paperless_account, notify=False)
    await _fail(services, failed["_id"], "SMTP 550 no such mailbox")
    until = utcnow() + dt.timedelta(milliseconds=1)

    response = await client.get(
        f"{BASE}/stats", params={"since": iso(since), "until": iso(until)}, headers=auth(admin_key)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"] == {
        "email": {"failed": 1, "sent": 1, "skipped": 2},
        "realtime": {"sent": 1, "skipped": 3},
    }
    assert sorted((r["channel"], r["type"], r["status"], r["count"]) for r in body["totals"]) == [
        ("email", "contract_letter", "skipped", 1),
        ("email", "invoice", "failed", 1),
        ("email", "invoice", "sent", 1),
        ("email", "invoice", "skipped", 1),
        ("realtime", "contract_letter", "skipped", 1),
        ("realtime", "invoice", "sent", 1),
        ("realtime", "invoice", "skipped", 2),
    ]
    days = {row["day"] for row in body["days"]}
    assert days <= {since.date().isoformat(), until.date().isoformat()}
    assert sum(r["count"] for r in body["days"] if r["channel"] == "email") == 4
    assert body["since"] == iso(since)
    assert body["until"] == iso(until)


async def test_stats_rejects_bad_windows(client: AsyncTestClient[Any], admin_key: str) -> None:
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "since"),
        ({"since": "2020-01-01", "until": "2026-01-01"}, "since"),
    ):
        response = await client.get(f"{BASE}/stats", params=params, headers=auth(admin_key))
        assert response.status_code == 400, params
        assert response.json()["error"]["field"] == field


async def test_failed_list_shows_errors_newest_first_in_pages(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    docs = [await store_document(services, paperless_account, notify=False) for _ in range(3)]
    for n, doc in enumerate(docs):
        await _fail(services, doc["_id"], f"SMTP 550 mailbox {n} unknown")
    newest_first = [d["_id"] for d in reversed(docs)]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(seen) < 3:
        params: dict[str, Any] = {"status": "failed", "channel": "email", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await client.get(BASE, params=params, headers=auth(admin_key))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) == 1
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        assert cursor is not None  # older failures (other tests) may follow
    assert [item["document_id"] for item in seen] == newest_first
    email = seen[0]["notifications"]["email"]
    assert email["status"] == "failed"
    assert email["error"] == "SMTP 550 mailbox 2 unknown"
    assert email["attempts"] == 6
    assert seen[0]["notifications"]["realtime"]["status"] == "skipped"
    assert seen[0]["account_id"] == paperless_account
    assert seen[0]["type"] == "invoice"


async def test_failed_list_rejects_bad_parameters(
    client: AsyncTestClient[Any], admin_key: str
) -> None:
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"channel": "sms"}, "channel"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        response = await client.get(BASE, params=params, headers=auth(admin_key))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["field"] == field
    assert (await client.get(BASE, params={"limit": 0}, headers=auth(admin_key))).status_code == 400


async def test_resend_resets_the_channel_and_enqueues(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    doc = await store_document(services, paperless_account, notify=False)
    await _fail(services, doc["_id"], "SMTP 550 no such mailbox")
    response = await client.post(
        f"{BASE}/{doc['_id']}/resend", params={"channel": "email"}, headers=auth(admin_key)
    )
    assert response.status_code == 202, response.text
    assert response.json()["enqueued"] is True
    state = await channel_state(services, doc["_id"], "email")
    # No worker runs in this module; were one running elsewhere, it may already be on it.
    assert state["status"] in {"pending", "sending", "sent"}
    assert state["attempts"] <= 1
    assert state["error"] is None
    assert state["reason"].startswith("resent by admin key")
    # The other channel is untouched.
    assert (await channel_state(services, doc["_id"], "realtime"))["status"] == "skipped"


async def test_resend_refusals(
    client: AsyncTestClient[Any], admin_key: str, services: Services, paperless_account: str
) -> None:
    doc = await store_document(services, paperless_account, notify=False)
    unknown_channel = await client.post(
        f"{BASE}/{doc['_id']}/resend", params={"channel": "sms"}, headers=auth(admin_key)
    )
    assert unknown_channel.status_code == 400
    assert unknown_channel.json()["error"]["field"] == "channel"
    missing_channel = await client.post(f"{BASE}/{doc['_id']}/resend", headers=auth(admin_key))
    assert missing_channel.status_code == 400

    unknown_doc = await client.post(
        f"{BASE}/nope/resend", params={"channel": "email"}, headers=auth(admin_key)
    )
    assert unknown_doc.status_code == 404

    paper = unique("acct")
    await services.accounts.update(paper, by="test", paperless=False)
    printed = await store_document(services, paper)
    on_paper = await client.post(
        f"{BASE}/{printed['_id']}/resend", params={"channel": "email"}, headers=auth(admin_key)
    )
    assert on_paper.status_code == 409
    assert (await channel_state(services, printed["_id"], "email"))["status"] == "skipped"

    await make_pending(
        services,
        doc["_id"],
        "email",
        status="sending",
        claim="c",
        lease_until=utcnow() + dt.timedelta(minutes=1),
    )
    busy = await client.post(
        f"{BASE}/{doc['_id']}/resend", params={"channel": "email"}, headers=auth(admin_key)
    )
    assert busy.status_code == 409
    assert (await channel_state(services, doc["_id"], "email"))["status"] == "sending"


async def test_cli_stats_failed_and_resend(
    test_env: dict[str, str], services: Services, paperless_account: str
) -> None:
    doc = await store_document(services, paperless_account, notify=False)
    await _fail(services, doc["_id"], "SMTP 554 rejected for policy reasons")

    stats = json.loads(cli("notifications", "stats", "--json").stdout)
    assert stats["summary"]["email"]["failed"] >= 1

    listing = cli("notifications", "failed", "--channel", "email", "--limit", "200").stdout
    assert doc["_id"] in listing
    assert "SMTP 554 rejected for policy reasons" in listing

    done = cli("notifications", "resend", doc["_id"], "--channel", "email")
    assert f"{doc['_id']} email: pending, enqueued" in done.stdout
    assert (await channel_state(services, doc["_id"], "email"))["status"] == "pending"

    bad = cli("notifications", "resend", doc["_id"], "--channel", "fax", check=False)
    assert bad.returncode != 0
    assert "unknown channel 'fax'" in bad.stderr
