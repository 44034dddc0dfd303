"""The portal API over the whole app (in-process ASGI) on the real stack."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import TEST_JWT_SECRET, unique
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
LIST = "/v1/mailbox/documents"


async def list_all(client: AsyncTestClient[Any], token: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_cursor to the end; every page must be 200."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(LIST, params=query, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


@pytest.fixture(scope="module")
async def inbox(client: AsyncTestClient[Any], ingest_key: str) -> dict[str, Any]:
    """One account with 7 documents (two issued at the same instant) and a second account."""
    account, other = unique("acct"), unique("acct")
    ids: dict[str, str] = {}
    for n in range(5):
        ids[f"inv{n}"] = await ingest(
            client, ingest_key, account, issued_at=T0 + dt.timedelta(days=n)
        )
    # Same issued_at as inv2: the order between them is decided by _id.
    ids["tie"] = await ingest(client, ingest_key, account, issued_at=T0 + dt.timedelta(days=2))
    ids["letter"] = await ingest(
        client, ingest_key, account, issued_at=T0 + dt.timedelta(days=10), kind="contract_letter"
    )
    ids["other"] = await ingest(client, ingest_key, other, issued_at=T0 + dt.timedelta(days=3))
    return {"account": account, "other": other, "ids": ids}


def expected_order(docs: list[tuple[dt.datetime, str]]) -> list[str]:
    return [doc_id for _, doc_id in sorted(docs, reverse=True)]


async def test_ties_on_issued_at_split_across_pages_keep_id_order(
    client: AsyncTestClient[Any], settings: Settings, ingest_key: str
) -> None:
    """Five documents of one millisecond, between two others: every page size cuts the tie
    somewhere, and each page starts strictly after the last item (by `_id`), never repeating
    or skipping one; with a type filter too (another index shape)."""
    account = unique("acct")
    tied = T0 + dt.timedelta(days=5, milliseconds=7)
    docs = [
        (
            T0 + dt.timedelta(days=9),
            await ingest(client, ingest_key, account, issued_at=T0 + dt.timedelta(days=9)),
        )
    ]
    for _ in range(5):
        docs.append((tied, await ingest(client, ingest_key, account, issued_at=tied)))
    docs.append((T0, await ingest(client, ingest_key, account, issued_at=T0)))
    want = expected_order(docs)
    token = portal_token(settings, account)
    for limit in (1, 2, 3, 4, 6):
        got = [item["id"] for item in await list_all(client, token, limit=limit)]
        assert got == want, f"limit={limit}"
        typed = await list_all(client, token, limit=limit, type="invoice")
        assert [item["id"] for item in typed] == want, f"limit={limit} type=invoice"


async def test_list_is_newest_first_and_pages_cover_everything_once(
    client: AsyncTestClient[Any], settings: Settings, inbox: dict[str, Any]
) -> None:
    token = portal_token(settings, inbox["account"])
    ids = inbox["ids"]
    issued = {f"inv{n}": T0 + dt.timedelta(days=n) for n in range(5)}
    issued |= {"tie": T0 + dt.timedelta(days=2), "letter": T0 + dt.timedelta(days=10)}
    want = expected_order([(issued[name], ids[name]) for name in issued])

    for limit in (1, 2, 3, 7, 100):
        got = await list_all(client, token, limit=limit)
        assert [item["id"] for item in got] == want, f"limit={limit}"

    first = (await client.get(LIST, params={"limit": 2}, headers=bearer(token))).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    item = first["items"][0]
    assert set(item) == {
        "id",
        "type",
        "account_id",
        "title",
        "summary",
        "issued_at",
        "read_at",
        "archived",
        "size",
        "content_type",
        "status",
        "status_at",
    }
    assert item["type"] == "contract_letter"
    assert item["issued_at"] == "2026-03-11T08:00:00Z"
    assert item["archived"] is False
    assert item["content_type"] == "application/pdf"
    assert item["size"] > 0
    assert item["summary"]["contract_number"]


async def test_filters(
    client: AsyncTestClient[Any], settings: Settings, services: Services, ingest_key: str
) -> None:
    account, second = unique("acct"), unique("acct")
    inv_old = await ingest(client, ingest_key, account, issued_at=T0)
    inv_new = await ingest(client, ingest_key, account, issued_at=T0 + dt.timedelta(days=40))
    letter = await ingest(
        client, ingest_key, account, issued_at=T0 + dt.timedelta(days=20), kind="contract_letter"
    )
    archived = await ingest(client, ingest_key, account, issued_at=T0 + dt.timedelta(days=30))
    in_second = await ingest(client, ingest_key, second, issued_at=T0 + dt.timedelta(days=5))
    token = portal_token(settings, account, second)
    headers = bearer(token)
    assert (await client.post(f"{LIST}/{inv_new}/read", headers=headers)).status_code == 200
    assert (await client.post(f"{LIST}/{archived}/archive", headers=headers)).status_code == 200

    async def ids(**params: Any) -> list[str]:
        return [item["id"] for item in await list_all(client, token, **params)]

    assert await ids() == [inv_new, letter, in_second, inv_old]  # inbox hides the archived one
    assert await ids(archived="true") == [archived]
    assert await ids(archived="false") == await ids()
    assert await ids(account=second) == [in_second]
    assert await ids(account=account, type="invoice") == [inv_new, inv_old]
    assert await ids(type="contract_letter") == [letter]
    assert await ids(account=account, unread="true") == [letter, inv_old]
    assert await ids(unread="false") == [inv_new]
    assert await ids(account=account, issued_from="2026-03-21", issued_to="2026-04-09") == [letter]
    # A date as issued_to includes that whole day; a time excludes itself.
    assert await ids(account=account, issued_from="2026-03-01", issued_to="2026-03-01") == [inv_old]
    assert await ids(account=account, issued_to="2026-03-01T08:00:00Z") == []
    assert await ids(account=account, type="invoice", unread="true", issued_from="2026-02-01") == [
        inv_old
    ]
    assert await ids(account=account, archived="true", type="invoice", unread="true") == [archived]


async def test_cursor_is_bound_to_its_filters_and_cannot_be_forged(
    client: AsyncTestClient[Any], settings: Settings, inbox: dict[str, Any]
) -> None:
    headers = bearer(portal_token(settings, inbox["account"]))
    page = (await client.get(LIST, params={"limit": 2, "unread": "true"}, headers=headers)).json()
    cursor = page["next_cursor"]
    ok = await client.get(
        LIST, params={"limit": 2, "unread": "true", "cursor": cursor}, headers=headers
    )
    assert ok.status_code == 200

    reused = await client.get(LIST, params={"limit": 2, "cursor": cursor}, headers=headers)
    assert reused.status_code == 400
    assert reused.json()["error"]["field"] == "cursor"
    assert "other filters" in reused.json()["error"]["message"]

    # Move the position to the end of time by rewriting the payload: the MAC gives it away.
    payload, mac = cursor.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded[1] = 99_999_999_999_999
    forged_payload = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    forged = await client.get(
        LIST, params={"unread": "true", "cursor": f"{forged_payload}.{mac}"}, headers=headers
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"unread": "maybe"}, "unread"),
        ({"archived": "2"}, "archived"),
        ({"issued_from": "last week"}, "issued_from"),
        ({"issued_to": "2026-01-31T10:00:00"}, "issued_to"),
        ({"issued_from": "2026-02-01", "issued_to": "2026-01-01"}, "issued_to"),
        ({"type": "love_letter"}, "type"),
        ({"account": "a b"}, "account"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    client: AsyncTestClient[Any], settings: Settings, params: dict[str, str], field: str
) -> None:
    response = await client.get(LIST, params=params, headers=bearer(portal_token(settings, "A1")))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]


def _token(settings: Settings, secret: str = TEST_JWT_SECRET, **overrides: Any) -> str:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    claims = {
        "sub": "mallory",
        "accounts": ["A1"],
        "aud": settings.auth.audience,
        "iss": settings.auth.issuer,
        "exp": now + 600,
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def _alg_none(settings: Settings) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = jwt.decode(_token(settings), options={"verify_signature": False})
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "make",
    [
        lambda s: None,
        lambda s: _token(s, exp=int(dt.datetime.now(dt.UTC).timestamp()) - 120),
        lambda s: _token(s, aud="billing"),
        lambda s: _token(s, iss="https://someone-else.example"),
        lambda s: _token(s, secret="not-the-secret-but-long-enough-0123456789"),
        _alg_none,
    ],
    ids=["missing", "expired", "wrong-audience", "wrong-issuer", "wrong-signature", "alg-none"],
)
async def test_bad_tokens_are_401(
    client: AsyncTestClient[Any], settings: Settings, make: Any
) -> None:
    token = make(settings)
    headers = bearer(token) if token else {}
    for path in (LIST, "/v1/mailbox/unread-count", "/v1/mailbox/accounts/A1/preferences"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthenticated"


async def test_detail_shows_attributes_but_no_internal_fields(
    client: AsyncTestClient[Any], settings: Settings, inbox: dict[str, Any]
) -> None:
    doc_id = inbox["ids"]["inv0"]
    response = await client.get(
        f"{LIST}/{doc_id}", headers=bearer(portal_token(settings, inbox["account"]))
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == doc_id
    assert body["attributes"]["currency"] == "EUR"
    assert body["filename"] == "document.pdf"
    assert body["created_at"].endswith("Z")
    for key in ("archived_at", "first_downloaded_at", "first_read_at", "retain_until", "sha256"):
        assert key in body
    text = response.text
    for internal in (
        "fingerprint",
        "source",
        "blob",
        "delivery",
        "notifications",
        "origin",
        "recipient",
        "documents/",
    ):
        assert internal not in body
        assert f'"{internal}' not in text


async def test_read_unread_archive_unarchive(
    client: AsyncTestClient[Any], settings: Settings, services: Services, ingest_key: str
) -> None:
    account = unique("acct")
    doc_id = await ingest(client, ingest_key, account)
    headers = bearer(portal_token(settings, account))
    url = f"{LIST}/{doc_id}"

    first = (await client.post(f"{url}/read", headers=headers)).json()
    assert first["read_at"] is not None
    assert first["first_read_at"] == first["read_at"]
    again = (await client.post(f"{url}/read", headers=headers)).json()
    assert again["read_at"] == first["read_at"]  # idempotent: the first read time stays

    unread = await client.delete(f"{url}/read", headers=headers)
    assert unread.status_code == 200
    assert unread.json()["read_at"] is None
    assert unread.json()["first_read_at"] == first["read_at"]  # kept for the record
    reread = (await client.post(f"{url}/read", headers=headers)).json()
    assert reread["read_at"] >= first["read_at"]
    assert reread["first_read_at"] == first["read_at"]

    archived = (await client.post(f"{url}/archive", headers=headers)).json()
    assert archived["archived"] is True
    assert archived["archived_at"] is not None
    assert doc_id not in [i["id"] for i in await list_all(client, headers["Authorization"][7:])]
    restored = (await client.delete(f"{url}/archive", headers=headers)).json()
    assert restored["archived"] is False
    assert restored["archived_at"] is None

    stored = await services.documents.record(doc_id)
    assert stored is not None
    assert stored["archived_at"] is None
    assert stored["first_read_at"] is not None


async def test_unread_count(
    client: AsyncTestClient[Any], settings: Settings, ingest_key: str
) -> None:
    a, b, empty = unique("acct"), unique("acct"), unique("acct")
    a1 = await ingest(client, ingest_key, a)
    await ingest(client, ingest_key, a, kind="contract_letter")
    a3 = await ingest(client, ingest_key, a)
    await ingest(client, ingest_key, b)
    headers = bearer(portal_token(settings, a, b, empty))
    await client.post(f"{LIST}/{a1}/read", headers=headers)
    await client.post(f"{LIST}/{a3}/archive", headers=headers)

    response = await client.get("/v1/mailbox/unread-count", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "total": 2,
        "by_account": {a: 1, b: 1, empty: 0},
        "by_type": {"contract_letter": 1, "invoice": 1},
    }


async def test_preferences(
    client: AsyncTestClient[Any], settings: Settings, services: Services
) -> None:
    account = unique("acct")
    headers = bearer(portal_token(settings, account, sub="alice@portal"))
    url = f"/v1/mailbox/accounts/{account}/preferences"

    fresh = await client.get(url, headers=headers)
    assert fresh.status_code == 200
    assert fresh.json() | {"account_id": account} == {
        "account_id": account,
        "paperless": False,
        "email": None,
        "locale": None,
        "paperless_changed_at": None,
        "updated_at": None,
    }

    changed = await client.put(
        url, headers=headers, json={"paperless": True, "email": "a@example.org", "locale": "de"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["paperless"] is True
    assert changed.json()["email"] == "a@example.org"
    assert changed.json()["locale"] == "de"

    partial = await client.put(url, headers=headers, json={"locale": None})
    assert partial.json()["locale"] is None
    assert partial.json()["email"] == "a@example.org"  # left out: unchanged

    stored = await services.accounts.get(account)
    assert stored is not None
    assert [(c.paperless, c.by) for c in stored.consent_history] == [(True, "alice@portal")]

    for body, field in [
        ({"email": "not-an-email"}, "email"),
        ({"locale": "German"}, "locale"),
        ({"paperless": "yes"}, "paperless"),
        ({"colour": "blue"}, "colour"),
    ]:
        bad = await client.put(url, headers=headers, json=body)
        assert bad.status_code == 422, body
        assert bad.json()["error"]["field"] == field
    assert (await services.accounts.get(account)).email == "a@example.org"  # type: ignore[union-attr]


async def test_foreign_account_is_invisible_on_every_endpoint(
    client: AsyncTestClient[Any], settings: Settings, services: Services, ingest_key: str
) -> None:
    """A token for account A asks for B's things everywhere: 404 or empty, never B's data."""
    mine, theirs = unique("acct"), unique("acct")
    my_doc = await ingest(client, ingest_key, mine)
    their_doc = await ingest(client, ingest_key, theirs)
    await services.accounts.update(theirs, by="test", paperless=True, email="b@example.org")
    headers = bearer(portal_token(settings, mine))
    doc = f"{LIST}/{their_doc}"

    not_found = [
        await client.get(doc, headers=headers),
        await client.get(f"{doc}/content", headers=headers),
        await client.get(f"{doc}/content", headers={**headers, "Range": "bytes=0-3"}),
        await client.post(f"{doc}/read", headers=headers),
        await client.delete(f"{doc}/read", headers=headers),
        await client.post(f"{doc}/archive", headers=headers),
        await client.delete(f"{doc}/archive", headers=headers),
        await client.get(f"/v1/mailbox/accounts/{theirs}/preferences", headers=headers),
        await client.put(
            f"/v1/mailbox/accounts/{theirs}/preferences", headers=headers, json={"paperless": False}
        ),
    ]
    for response in not_found:
        assert response.status_code == 404, (response.request.url, response.text)
        assert theirs not in response.text
        assert "b@example.org" not in response.text
    # A document that does not exist at all answers exactly the same (but for its request id).
    missing = await client.get(f"{LIST}/{'0' * 32}", headers=headers)
    missing_error, foreign_error = missing.json()["error"], not_found[0].json()["error"]
    assert missing_error.pop("request_id") != foreign_error.pop("request_id")
    assert missing_error == foreign_error

    listed = await client.get(LIST, params={"account": theirs}, headers=headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}
    everything = await list_all(client, headers["Authorization"][7:])
    assert [item["id"] for item in everything] == [my_doc]
    count = (await client.get("/v1/mailbox/unread-count", headers=headers)).json()
    assert count == {"total": 1, "by_account": {mine: 1}, "by_type": {"invoice": 1}}

    stored = await services.documents.record(their_doc)
    assert stored is not None
    assert stored["read_at"] is None
    assert stored["archived_at"] is None
    assert stored["first_downloaded_at"] is None
    account = await services.accounts.get(theirs)
    assert account is not None
    assert account.paperless is True
