"""The MongoDB guarantees the outbox relies on, checked on the real engine (DocumentDB in the
local stack, or whatever MAILBOX_TEST_MONGO_URL points at).

- a claim is one atomic compare-and-set: of eight workers racing for one email, one sends it;
- outbox writes touch only their channel's fields: a portal `read_at` write and the other
  channel's writes racing them are all kept;
- a write command of 1,000 operations goes through as one command;
- each condition the outbox writes as a filter agrees with its predicate on a state;
- an operator's resend never resets a channel a worker holds;
- migration 0005 drops the old transition log.

Documents live in a database of this module's own (except where the portal API must see them),
so no worker process or sweep elsewhere in the session touches them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pymongo import MongoClient, UpdateOne, monitoring
from pymongo.collection import Collection

from mailbox_service.auth import mint_token
from mailbox_service.clock import utcnow
from mailbox_service.errors import Conflict
from mailbox_service.migrate import MigrationContext, discover
from mailbox_service.notifications.delivery import Outcome
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import connect_blocking, documents_collection
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.outbox import AsyncOutbox
from mailbox_service.storage.outbox.states import (
    claimable,
    is_claimable,
    is_lost,
    is_resendable,
    lost,
    resendable,
)
from mailbox_service.wiring.services import Services
from notify_fixtures import Harness, Maildir, make_pending, pending_email, store_document

ISOLATED_DB = "mailbox_outbox_engine_tests"
WORKERS = 8


@pytest.fixture(scope="module")
def clients(settings: Settings) -> Iterator[list[MongoClient[Doc]]]:
    """One client per racing worker, like separate worker processes."""
    made = [connect_blocking(settings.mongo, pool_size=2) for _ in range(WORKERS)]
    yield made
    made[0][ISOLATED_DB]["documents"].delete_many({})
    for client in made:
        client.close()


@pytest.fixture(scope="module")
def documents(clients: list[MongoClient[Doc]]) -> Collection[Doc]:
    return documents_collection(clients[0], ISOLATED_DB)


def email_state(documents: Collection[Doc], document_id: str) -> dict[str, Any]:
    doc = documents.find_one({"_id": document_id})
    assert doc is not None
    state: dict[str, Any] = doc["notifications"]["email"]
    return state


def race(*tasks: Any) -> list[Any]:
    """Run the callables in threads released together; their results in order."""
    start = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)

    def run(n: int) -> None:
        start.wait()
        results[n] = tasks[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def test_eight_racing_workers_send_one_email(
    settings: Settings,
    services: Services,
    clients: list[MongoClient[Doc]],
    documents: Collection[Doc],
    paperless_account: str,
) -> None:
    maildir = Maildir()
    workers = [Harness(settings, documents_collection(c, ISOLATED_DB)) for c in clients]
    ids = [await pending_email(services, documents, paperless_account) for _ in range(20)]
    outcomes: dict[str, list[Outcome]] = {}
    for document_id in ids:
        outcomes[document_id] = await asyncio.to_thread(
            race, *(functools.partial(w.deliverer.deliver_email, document_id) for w in workers)
        )
    await asyncio.sleep(0.5)  # a second copy would have arrived by now
    sent = {document_id: len(maildir.for_document(document_id)) for document_id in ids}
    assert sent == dict.fromkeys(ids, 1)
    for document_id in ids:
        assert sorted(outcomes[document_id]) == ["not_claimed"] * (WORKERS - 1) + ["sent"]
        state = email_state(documents, document_id)
        assert (state["status"], state["attempts"], state["version"]) == ("sent", 1, 2)
    for worker in workers:
        worker.close()


async def test_a_portal_read_racing_the_worker_keeps_both(
    settings: Settings,
    services: Services,
    client: AsyncTestClient[Any],
    clients: list[MongoClient[Doc]],
    paperless_account: str,
) -> None:
    """The portal marks each document read (HTTP, in-process app) while the worker claims and
    records both channels of it: four outbox writes racing one portal write per document."""
    worker = Harness(settings, documents_collection(clients[0], settings.mongo.database))
    token = mint_token(settings.auth, "portal-user", [paperless_account])
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for _ in range(30):
        doc = await store_document(services, paperless_account, notify=False)
        for channel in ("email", "realtime"):
            await make_pending(services, doc["_id"], channel)
        ids.append(doc["_id"])

    async def read(document_id: str) -> None:
        response = await client.post(f"/v1/mailbox/documents/{document_id}/read", headers=headers)
        assert response.status_code == 200, response.text

    for document_id in ids:
        email, realtime, _ = await asyncio.gather(
            asyncio.to_thread(worker.deliverer.deliver_email, document_id),
            asyncio.to_thread(worker.deliverer.deliver_realtime, document_id),
            read(document_id),
        )
        assert (email, realtime) == ("sent", "sent")
    unread, wrong = [], []
    for document_id in ids:
        stored = await services.documents.record(document_id)
        assert stored is not None
        if stored["read_at"] is None:
            unread.append(document_id)
        for channel in ("email", "realtime"):
            state = stored["notifications"][channel]
            got = (state["status"], state["attempts"], state.get("version"))
            # Email: claim and outcome; real time: the outcome only (no claim is written).
            if got != ("sent", 1, 2 if channel == "email" else 1):
                wrong.append((document_id, channel, got))
    assert unread == [], f"the portal's read was lost on {len(unread)} of {len(ids)} documents"
    assert wrong == [], "an outbox write was lost"
    worker.close()


class CommandLog(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: list[monitoring.CommandStartedEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str) -> list[monitoring.CommandStartedEvent]:
        return [e for e in self.events if e.command_name == name]


def test_a_thousand_operation_write_is_one_command(settings: Settings) -> None:
    commands = CommandLog()
    # A server that stalls on a big write command (FerretDB 1 did) fails this instead of
    # hanging the suite.
    client: MongoClient[dict[str, Any]] = MongoClient(
        settings.mongo.url, event_listeners=[commands], socketTimeoutMS=30_000
    )
    with client as mongo:
        collection = mongo[ISOLATED_DB]["bulk"]
        collection.delete_many({})
        docs = [{"_id": f"bulk-{n:04d}", "n": n, "status": "pending"} for n in range(1000)]
        assert len(collection.insert_many(docs, ordered=False).inserted_ids) == 1000
        (insert,) = commands.named("insert")
        assert len(insert.command["documents"]) == 1000

        updates = [
            UpdateOne({"_id": doc["_id"]}, {"$set": {"status": "sent"}, "$inc": {"n": 1}})
            for doc in docs
        ]
        result = collection.bulk_write(updates, ordered=False)
        assert (result.matched_count, result.modified_count) == (1000, 1000)
        (update,) = commands.named("update")
        assert len(update.command["updates"]) == 1000
        assert collection.count_documents({"status": "sent"}) == 1000
        collection.drop()


def test_each_condition_agrees_with_its_filter(documents: Collection[Doc]) -> None:
    now = utcnow()
    grace = dt.timedelta(seconds=60)
    soon, earlier, long_ago = (
        now + dt.timedelta(seconds=5),
        now - dt.timedelta(seconds=5),
        now - dt.timedelta(minutes=5),
    )
    states: list[dict[str, Any]] = [
        {"status": "pending", "at": now},  # as ingest writes it
        {"status": "pending", "at": long_ago},
        {"status": "pending", "at": long_ago, "next_at": None},
        {"status": "pending", "at": long_ago, "next_at": earlier},
        {"status": "pending", "at": long_ago, "next_at": long_ago},
        {"status": "pending", "at": long_ago, "next_at": soon},
        {"status": "sending", "lease_until": soon},
        {"status": "sending", "lease_until": earlier},
        {"status": "sending", "lease_until": None},
        {"status": "sent", "at": long_ago},
        {"status": "failed", "at": long_ago},
        {"status": "skipped", "at": long_ago},
    ]
    ids = [f"cond-{now.timestamp()}-{n}" for n in range(len(states))]
    documents.insert_many(
        [{"_id": i, "notifications": {"email": s}} for i, s in zip(ids, states, strict=True)]
    )
    conditions = [
        (claimable("email", now), lambda s: is_claimable(s, now)),
        (lost("email", now, grace), lambda s: is_lost(s, now, grace)),
        (resendable("email", now), lambda s: is_resendable(s, now)),
    ]
    for query, predicate in conditions:
        found = {d["_id"] for d in documents.find({"_id": {"$in": ids}, **query}, {"_id": 1})}
        expected = {i for i, s in zip(ids, states, strict=True) if predicate(s)}
        assert found == expected, query
    # A document written before a channel existed has no state for it: resendable only.
    documents.insert_one({"_id": ids[0] + "-bare", "notifications": {}})
    bare = {"_id": ids[0] + "-bare"}
    assert documents.find_one({**bare, **resendable("email", now)}) is not None
    assert documents.find_one({**bare, **claimable("email", now)}) is None


async def test_a_resend_never_resets_a_channel_a_worker_holds(
    settings: Settings,
    services: Services,
    documents: Collection[Doc],
    paperless_account: str,
) -> None:
    """Workers claim while an operator resends (the async outbox of the admin API): whichever
    comes first, the channel ends up held by exactly one claim, never reset under it."""
    worker = Harness(settings, documents)
    admin = AsyncOutbox(
        Collections.of(services.mongo, ISOLATED_DB).documents,
        lease=dt.timedelta(seconds=settings.notify.lease_s),
    )
    for _ in range(10):
        document_id = await pending_email(services, documents, paperless_account)

        async def resend(document_id: str = document_id) -> str:
            try:
                await admin.resend(document_id, "email", "test")
            except Conflict:
                return "busy"
            return "resent"

        def claims(document_id: str = document_id) -> list[Any]:
            return race(*(lambda: worker.outbox.claim(document_id, "email", "w") for _ in range(4)))

        resent, claimed = await asyncio.gather(resend(), asyncio.to_thread(claims))
        winners = [c for c in claimed if c is not None]
        assert len(winners) == 1, f"{len(winners)} workers claimed it (resend: {resent})"
        winner = winners[0]
        state = email_state(documents, document_id)
        assert state["status"] == "sending", (resent, state)
        assert state["claim"] == winner.token
        assert state["attempts"] == 1
        # The resend either came first (version 1 → claimed 2) or was refused (claimed 1).
        assert state["version"] == (2 if resent == "resent" else 1)
    worker.close()


async def test_migration_0005_drops_the_transition_log(
    settings: Settings, services: Services
) -> None:
    db = services.mongo["mailbox_outbox_migration_tests"]
    await db["notification_transitions"].insert_one({"document_id": "d1", "at": utcnow()})
    (migration,) = [m for m in discover(migrations_dir()) if m.version == "0005"]
    up = migration.load()
    ctx = MigrationContext(settings, Collections.of(services.mongo, db.name), services.blobs)
    await up(ctx)
    assert "notification_transitions" not in await db.list_collection_names()
    await up(ctx)  # safe to re-run: nothing left to drop
