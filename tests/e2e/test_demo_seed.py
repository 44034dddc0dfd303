"""The demo inbox seed: idempotent, every type and state, through the real ingest pipeline."""

from __future__ import annotations

import datetime as dt

from app_fixtures import cli
from mailbox_devtools.demo.seed import (
    ARCHIVED_REFS,
    DEMO_SOURCE,
    DOCUMENT_COUNT,
    DemoSeed,
    demo_documents,
    seed_demo,
)
from mailbox_service.auth.tokens import PortalUser
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.portal.demo_users import DEMO_ACCOUNTS, DEMO_USERS, demo_user
from mailbox_service.wiring.services import Services


def test_the_plan_is_fixed_apart_from_its_dates() -> None:
    one = demo_documents(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    other = demo_documents(dt.datetime(2027, 6, 1, tzinfo=dt.UTC))
    assert len(one) == DOCUMENT_COUNT
    refs = [doc.metadata["source_ref"] for doc in one]
    assert len(set(refs)) == len(refs)
    assert refs == [doc.metadata["source_ref"] for doc in other]
    assert [d.metadata["account_id"] for d in one] == [d.metadata["account_id"] for d in other]
    issued = [doc.metadata["issued_at"] for doc in one]
    assert issued == sorted(issued, reverse=True), "newest first"


def test_two_users_three_accounts_one_shared() -> None:
    alice, bob = DEMO_USERS
    assert len({a.account_id for a in DEMO_ACCOUNTS}) == 3
    assert set(alice.accounts) | set(bob.accounts) == {a.account_id for a in DEMO_ACCOUNTS}
    assert len(set(alice.accounts) & set(bob.accounts)) == 1
    assert demo_user("alice") is alice
    assert demo_user("mallory") is None


async def test_seeding_again_stores_nothing_twice(services: Services, demo: DemoSeed) -> None:
    assert demo.documents == DOCUMENT_COUNT
    again = await seed_demo(services)
    assert (again.created, again.existing) == (0, DOCUMENT_COUNT)
    stored = await services.database.documents.count_documents({"source": DEMO_SOURCE})
    assert stored == DOCUMENT_COUNT


async def test_seeded_documents_cover_every_type_and_state(
    services: Services, demo: DemoSeed
) -> None:
    docs = await services.database.documents.find({"source": DEMO_SOURCE}).to_list()
    assert {doc["type"] for doc in docs} == {"invoice", "contract_letter", "shipment_document"}
    assert {doc["account_id"] for doc in docs} == set(demo.accounts)
    archived = {doc["source_ref"] for doc in docs if doc["archived_at"] is not None}
    assert archived == ARCHIVED_REFS
    read = [doc for doc in docs if doc["read_at"] is not None]
    assert 0 < len(read) < len(docs)
    # History: no email or event was sent for any of them.
    assert all(doc["notifications"]["email"]["status"] == "skipped" for doc in docs)
    assert all(doc["blob"]["content_type"] == "application/pdf" for doc in docs)
    first = b"".join([chunk async for chunk in services.blobs.stream(docs[0]["blob"]["key"])])
    assert first.startswith(b"%PDF-")
    assert len(first) == docs[0]["blob"]["size"]


async def test_alice_has_invoices_and_more_than_one_page(
    services: Services, demo: DemoSeed
) -> None:
    alice = DEMO_USERS[0]
    user = PortalUser(sub=alice.sub, accounts=alice.accounts)
    page = await services.mailbox.page(user, ListFilters(), limit=20, cursor=None)
    assert page.next_cursor is not None, "no 'Load more' for the demo"
    assert sum(item.type == "invoice" for item in page.items) >= 3
    assert {item.account_id for item in page.items} <= set(alice.accounts)


def test_demo_seed_command(demo: DemoSeed) -> None:
    out = cli("demo", "seed").stdout
    assert "0 documents stored" in out
    for user in DEMO_USERS:
        assert f"sign in as {user.sub}" in out
