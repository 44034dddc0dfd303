"""`GET /v1/admin/audit` and `mailbox-service audit`: filters, keyset pages, bad parameters."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import cli, unique
from audit_fixtures import audit_entries, own_database
from mailbox_fixtures import bearer
from mailbox_service.audit import OPERATOR
from mailbox_service.audit.query import AuditFilters, AuditQuery
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services

BASE = "/v1/admin/audit"


@pytest.fixture
async def trail(services: Services) -> dict[str, Any]:
    """Seven entries about one fresh account: five reads of two documents by one user, a
    preferences change by them, and a resend by the operator."""
    account, user = unique("acct"), unique("user")
    docs = [unique("doc"), unique("doc")]
    actor = {"kind": "portal", "sub": user}
    for i in range(5):
        await services.audit.record(
            "document.read", actor, account_id=account, document_id=docs[i % 2]
        )
    await services.audit.record("preferences.changed", actor, account_id=account)
    await services.audit.record(
        "notification.resent", OPERATOR, account_id=account, document_id=docs[0]
    )
    await services.audit.flush()
    entries = await audit_entries(services, {"account_id": account}, 7)
    return {"account": account, "user": user, "docs": docs, "entries": entries}


async def pages(
    client: AsyncTestClient[Any], key: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(BASE, params=query, headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= params["limit"]
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_pages_are_newest_first_without_repeats_or_gaps(
    client: AsyncTestClient[Any], admin_key: str, trail: dict[str, Any]
) -> None:
    items = await pages(client, admin_key, {"account_id": trail["account"], "limit": 2})
    stored = sorted(trail["entries"], key=lambda e: (e["at"], e["_id"]), reverse=True)
    assert [item["id"] for item in items] == [entry["_id"] for entry in stored]
    first = items[-1]
    assert first["account_id"] == trail["account"]
    assert len(first["hash"]) == 64
    assert len(first["prev_hash"]) == 64
    assert first["actor"] == {"kind": "portal", "sub": trail["user"]}


async def test_each_filter_narrows_the_list(
    client: AsyncTestClient[Any], admin_key: str, trail: dict[str, Any]
) -> None:
    account, user, docs = trail["account"], trail["user"], trail["docs"]

    async def ids(**params: Any) -> list[str]:
        found = await pages(client, admin_key, {"account_id": account, "limit": 50, **params})
        return [item["id"] for item in found]

    def expected(match: Any) -> list[str]:
        chosen = [e for e in trail["entries"] if match(e)]
        return [e["_id"] for e in sorted(chosen, key=lambda e: (e["at"], e["_id"]), reverse=True)]

    assert await ids(action="document.read") == expected(lambda e: e["action"] == "document.read")
    assert await ids(document_id=docs[0]) == expected(lambda e: e["document_id"] == docs[0])
    assert await ids(actor="operator") == expected(lambda e: e["actor"]["kind"] == "operator")
    assert await ids(actor=user) == expected(lambda e: e["actor_id"] == user)
    later = trail["entries"][4]["at"]
    since = later.isoformat().replace("+00:00", "Z")
    assert await ids(since=since) == expected(lambda e: e["at"] >= later)
    # The document filter alone, without the account, finds the same.
    alone = await pages(client, admin_key, {"document_id": docs[1], "limit": 50})
    assert [i["id"] for i in alone] == expected(lambda e: e["document_id"] == docs[1])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "document.stolen"}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"cursor": "forged.cursor"}, "cursor"),
        ({"actor": "x" * 300}, "actor"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    client: AsyncTestClient[Any], admin_key: str, params: dict[str, Any], field: str
) -> None:
    response = await client.get(BASE, params=params, headers=bearer(admin_key))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]


async def test_a_cursor_only_continues_the_filters_it_was_made_for(
    client: AsyncTestClient[Any], admin_key: str, trail: dict[str, Any]
) -> None:
    first = await client.get(
        BASE, params={"account_id": trail["account"], "limit": 2}, headers=bearer(admin_key)
    )
    cursor = first.json()["next_cursor"]
    assert cursor
    other = await client.get(
        BASE,
        params={"account_id": trail["account"], "action": "document.read", "cursor": cursor},
        headers=bearer(admin_key),
    )
    assert other.status_code == 400
    assert other.json()["error"]["field"] == "cursor"


async def test_only_admin_keys_read_the_trail(
    client: AsyncTestClient[Any], ingest_key: str
) -> None:
    assert (await client.get(BASE)).status_code == 401
    forbidden = await client.get(BASE, headers=bearer(ingest_key))
    assert forbidden.status_code == 403


async def test_cli_prints_the_same_entries(trail: dict[str, Any]) -> None:
    result = cli("audit", "--account", trail["account"], "--limit", "3", "--json")
    page = json.loads(result.stdout)
    assert len(page["items"]) == 3
    assert page["next_cursor"]
    rest = cli("audit", "--account", trail["account"], "--cursor", page["next_cursor"])
    lines = rest.stdout.strip().splitlines()
    assert len(lines) == 4
    assert all(f"account={trail['account']}" in line for line in lines)
    newest = page["items"][0]
    assert (newest["action"], newest["actor"]) == ("notification.resent", {"kind": "operator"})
    assert f"portal:{trail['user']}" in lines[0]
    bad = cli("audit", "--since", "soon", check=False)
    assert bad.returncode != 0
    assert "since" in bad.stderr


def test_since_accepts_a_date() -> None:
    # A date means midnight UTC (the same parser as the notification stats).
    parsed = AuditFilters.parse(since="2026-11-30")
    assert parsed.since == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


async def test_unfiltered_pages_cross_days_newest_first(settings: Settings) -> None:
    """Without an equality filter the list is read a UTC day at a time: pages that span days,
    a day without entries in between, and `since` within a day."""
    own = own_database(settings)
    services = Services.build(own)
    try:
        base = dt.datetime(2026, 3, 10, 22, 0, tzinfo=dt.UTC)
        moments = [base + dt.timedelta(hours=h) for h in (0, 1, 3, 4, 51, 52)]  # 10th, 11th, 13th
        entries = [
            {"at": at, "action": "document.read", "actor": OPERATOR, "actor_id": "operator"}
            for at in moments
        ]
        chain = services.audit.chain
        await chain.insert(await chain.extend(entries))
        query = AuditQuery(services.audit_log, services.cursors)
        seen: list[dt.datetime] = []
        cursor = None
        while True:
            page = await query.page(AuditFilters(), limit=2, cursor=cursor)
            seen.extend(item.at for item in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(moments, reverse=True)
        since = AuditFilters.parse(since="2026-03-11T01:30:00Z")
        later = await query.page(since, limit=10, cursor=None)
        assert [item.at for item in later.items] == sorted(moments[3:], reverse=True)
        assert [r.day for r in [await chain.verify_day(d) for d in await chain.days()]] == [
            "2026-03-10",
            "2026-03-11",
            "2026-03-13",
        ]
    finally:
        await services.mongo.drop_database(own.mongo.database)
        await services.close()
