"""The change feed on the real stack: `GET /v1/documents/changes?since=&limit=`.

Every event of the caller's source after the cursor, in `_id` order, none of another source's,
only once settled (events.SETTLE); paging by `next` sees each event exactly once; `next` comes
with every page, empty or not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from bson import ObjectId
from litestar.testing import AsyncTestClient

from app_fixtures import invoice_metadata, post_document, unique
from mailbox_fixtures import bearer
from mailbox_service.senders.events import SETTLE, event_id, object_id_of
from mailbox_service.senders.feed import ChangeFeed, settle_bound
from mailbox_service.storage.sender_events import feed_query
from mailbox_service.wiring.services import Services

SETTLED = SETTLE.total_seconds() + 1.1
"""Long enough for an event recorded now to be served (its whole second has settled)."""
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def at(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def new_sender(services: Services) -> str:
    _, secret = await services.api_keys.create(unique("feed"), ["ingest"])
    return secret


async def changes(client: AsyncTestClient[Any], key: str, **params: Any) -> Any:
    return await client.get("/v1/documents/changes", params=params, headers=bearer(key))


async def drain(
    client: AsyncTestClient[Any], key: str, since: str | None, limit: int
) -> tuple[list[dict[str, Any]], str, int]:
    """Every item from `since` on, page by page; the items, the last `next`, pages read."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if since is not None:
            params["since"] = since
        response = await changes(client, key, **params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        items.extend(page["items"])
        assert page["next"]
        since = page["next"]
        if len(page["items"]) < limit:
            return items, since, pages


async def paid_documents(client: AsyncTestClient[Any], key: str, n: int) -> list[str]:
    """n invoices moved to `paid`: one `document.status_changed` each, in this order."""
    ids = []
    for _ in range(n):
        sent = await post_document(client, key, invoice_metadata(unique("acct"), notify=False))
        assert sent.status_code == 201, sent.text
        document_id = sent.json()["id"]
        update = await client.patch(
            f"/v1/documents/{document_id}",
            json={"status": "paid", "status_at": at(T0)},
            headers=bearer(key),
        )
        assert update.json()["outcome"] == "changed"
        ids.append(document_id)
    return ids


async def test_paging_sees_every_event_once_in_order_and_only_its_own(
    client: AsyncTestClient[Any], services: Services
) -> None:
    mine, theirs = await new_sender(services), await new_sender(services)
    empty = await changes(client, mine)
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    start = empty.json()["next"]  # a cursor even for an empty feed

    ids = await paid_documents(client, mine, 5)
    their_ids = await paid_documents(client, theirs, 2)
    await asyncio.sleep(SETTLED)

    items, last, pages = await drain(client, mine, None, limit=2)
    assert pages == 3
    assert [item["document_id"] for item in items] == ids
    assert {item["type"] for item in items} == {"document.status_changed"}
    assert all(item["data"]["status"] == "paid" for item in items)
    assert all(item["data"]["previous"] == "open" for item in items)
    event_ids = [item["id"] for item in items]
    assert len(set(event_ids)) == 5
    assert event_ids == sorted(event_ids)  # `_id` order
    assert not set(their_ids) & {item["document_id"] for item in items}

    # The empty page's cursor, kept while nothing happened, yields the same five.
    from_start, _, _ = await drain(client, mine, start, limit=100)
    assert [item["id"] for item in from_start] == event_ids
    # From the last cursor: nothing new, and a cursor to keep polling from.
    after = await changes(client, mine, since=last)
    assert after.json()["items"] == []
    assert after.json()["next"]

    more = await paid_documents(client, mine, 1)
    await asyncio.sleep(SETTLED)
    newer, _, _ = await drain(client, mine, after.json()["next"], limit=100)
    assert [item["document_id"] for item in newer] == more

    # The other source sees exactly its own two.
    their_items, _, _ = await drain(client, theirs, None, limit=100)
    assert [item["document_id"] for item in their_items] == their_ids


async def test_an_event_is_served_only_once_settled(
    client: AsyncTestClient[Any], services: Services
) -> None:
    key = await new_sender(services)
    [document_id] = await paid_documents(client, key, 1)
    # Right after it happened: held back, however fresh the cursor is.
    assert (await changes(client, key)).json()["items"] == []
    await asyncio.sleep(SETTLED)
    [item] = (await changes(client, key)).json()["items"]
    assert item["document_id"] == document_id


async def test_an_event_id_is_a_cursor(client: AsyncTestClient[Any], services: Services) -> None:
    key = await new_sender(services)
    await paid_documents(client, key, 3)
    await asyncio.sleep(SETTLED)
    items, _, _ = await drain(client, key, None, limit=100)
    after_first, _, _ = await drain(client, key, items[0]["id"], limit=100)
    assert [i["id"] for i in after_first] == [i["id"] for i in items[1:]]


async def test_feed_unit_bounds(services: Services) -> None:
    """The query pages by (source, _id) below the settle bound, with the feed index."""
    now = dt.datetime(2026, 11, 30, 12, 0, 5, tzinfo=dt.UTC)
    bound = settle_bound(now)
    assert bound.generation_time == now - SETTLE
    after = ObjectId()
    assert feed_query("s", after, bound) == {"source": "s", "_id": {"$lt": bound, "$gt": after}}
    assert object_id_of(event_id(after)) == after
    # A cursor past the settle bound waits: nothing after it has settled.
    page = await ChangeFeed(services.event_store).page(
        "s", event_id(ObjectId.from_datetime(now)), 10, now=now
    )
    assert page.items == []
    assert page.next == str(ObjectId.from_datetime(now))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "garbage"}, "since"),
        ({"since": "evt_" + "g" * 24}, "since"),
        ({"since": "A" * 24}, "since"),
        ({"since": " " + "a" * 24}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
    ],
)
async def test_a_malformed_cursor_or_limit_is_a_400_naming_it(
    client: AsyncTestClient[Any], services: Services, params: dict[str, Any], field: str
) -> None:
    key = await new_sender(services)
    response = await changes(client, key, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


async def test_ingest_key_required(client: AsyncTestClient[Any], services: Services) -> None:
    assert (await client.get("/v1/documents/changes")).status_code == 401
    _, admin = await services.api_keys.create(unique("ops"), ["admin"])
    assert (await changes(client, admin)).status_code == 403
