"""Every query shape of the audit trail reads an index (tests/explain_plans.py judges plans).

The real `AuditQuery` runs against a database of this module's own (every migration applied,
SEED entries), through a client whose commands are recorded; each recorded find is explained.
A filtered shape must read an index holding its most selective field (DocumentDB may pick any
`audit_*` index with that field, and sorts what it reads); the unfiltered list and `since`
alone read `audit_time`. `verify` reads a day's chain by `_id`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app_fixtures import unique
from explain_plans import CommandLog, Plan, explain
from mailbox_service.audit import AuditChain
from mailbox_service.audit.entry import ACTIONS, entry_id
from mailbox_service.audit.query import AuditFilters, AuditQuery
from mailbox_service.cursors import CursorSigner
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.audit_log import AuditLogStore
from mailbox_service.storage.mongo import Collections, Doc, client_options
from mailbox_service.wiring.services import Services

SEED = 3_000
DAY = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def seed_entry(n: int) -> Doc:
    at = DAY + dt.timedelta(seconds=n * 10)
    return {
        "_id": entry_id(at.strftime("%Y-%m-%d"), n + 1),
        "day": at.strftime("%Y-%m-%d"),
        "seq": n + 1,
        "at": at,
        "action": ACTIONS[n % len(ACTIONS)],
        "actor": {"kind": "portal", "sub": f"user-{n % 50}"},
        "actor_id": f"user-{n % 50}",
        "account_id": f"acct-{n % 40}",
        "document_id": f"doc-{n % 700}",
        "client": "192.0.2.1",
        "request_id": None,
        "details": None,
        "prev_hash": "0" * 64,
        "hash": "0" * 64,
    }


@dataclass
class Explained:
    log: CommandLog
    db: Any
    query: AuditQuery
    chain: AuditChain

    async def plans(self, call: Callable[[], Awaitable[Any]]) -> list[Plan]:
        """Run `call`; explain every query it sent to `audit` (the day heads are one small
        document per day)."""
        self.log.clear()
        await call()
        queries = [sent for sent in self.log.queries() if sent.command.get("find") == "audit"]
        assert queries, "the call sent no query"
        return [await explain(self.db, sent) for sent in queries]


@pytest.fixture(scope="module")
async def explained(settings: Settings, services: Services) -> AsyncIterator[Explained]:
    log = CommandLog()
    options = client_options(settings.mongo, "audit-ix")
    options["event_listeners"] = [*options.get("event_listeners", []), log]
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongo.url, **options)
    name = unique("auditix").replace("-", "_")
    collections = Collections.of(client, name)
    try:
        await Migrator(
            MigrationContext(settings, collections, services.blobs), migrations_dir()
        ).apply_pending()
        entries = [seed_entry(n) for n in range(SEED)]
        for start in range(0, SEED, 1000):
            await collections.audit.insert_many(entries[start : start + 1000])
        last = entries[-1]
        await collections.audit_heads.insert_one(
            {"_id": last["day"], "seq": last["seq"], "hash": last["hash"]}
        )
        cursors = CursorSigner(b"audit-index-test-cursor-key-0123")
        yield Explained(
            log,
            collections.db,
            AuditQuery(AuditLogStore(collections), cursors),
            AuditChain(collections),
        )
    finally:
        await client.drop_database(name)
        await client.close()


SINCE = (DAY + dt.timedelta(hours=5)).isoformat()


@dataclass(frozen=True)
class Shape:
    name: str
    params: dict[str, str]
    mongodb: tuple[str, ...]
    """The indexes MongoDB's planner may pick (equality first, then the sort keys)."""
    fields: tuple[str, ...]
    """Stored fields the query narrows by: on DocumentDB, any index holding one of them."""


SHAPES = [
    # Without an equality filter the list is read one UTC day (an `at` range) at a time.
    Shape("no filter", {}, ("audit_time",), ("at",)),
    Shape("since", {"since": SINCE}, ("audit_time",), ("at",)),
    Shape("account", {"account_id": "acct-3"}, ("audit_account_id",), ("account_id",)),
    Shape("document", {"document_id": "doc-7"}, ("audit_document_id",), ("document_id",)),
    Shape("actor", {"actor": "user-9"}, ("audit_actor_id",), ("actor_id",)),
    Shape("action", {"action": "document.read"}, ("audit_action",), ("action",)),
    Shape(
        "account and action since",
        {"account_id": "acct-3", "action": "document.archived", "since": SINCE},
        ("audit_account_id", "audit_action"),
        ("account_id", "action"),
    ),
    Shape(
        "actor and action",
        {"actor": "user-9", "action": "rate.limited"},
        ("audit_actor_id", "audit_action"),
        ("actor_id", "action"),
    ),
]


async def index_keys(db: Any) -> dict[str, tuple[str, ...]]:
    return {str(i["name"]): tuple(i["key"]) async for i in await db["audit"].list_indexes()}


def acceptable(plan: Plan, shape: Shape, keys: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if not plan.on_ferretdb:
        return shape.mongodb
    return tuple(name for name, key in keys.items() if set(key) & set(shape.fields))


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_audit_page_reads_an_index(explained: Explained, shape: Shape) -> None:
    filters = AuditFilters.parse(**shape.params)
    first = await explained.query.page(filters, limit=2, cursor=None)
    assert first.next_cursor, "the seed gives every shape a second page"
    keys = await index_keys(explained.db)
    for cursor in (None, first.next_cursor):
        plans = await explained.plans(
            functools.partial(explained.query.page, filters, limit=2, cursor=cursor)
        )
        for plan in plans:
            wanted = acceptable(plan, shape, keys)
            assert plan.uses(*wanted), (shape.name, plan.stages, plan.indexes, plan.full_scans)
            # MongoDB: equalities then the sort keys, so no in-memory sort, except where the
            # query has a range on `at` and another index's equality was preferred.
            assert not plan.blocking_sort or "at" in shape.fields, plan.stages


async def test_verify_reads_one_day_through_an_index(explained: Explained) -> None:
    plans = await explained.plans(lambda: explained.chain.verify_day(DAY.strftime("%Y-%m-%d")))
    reads = [plan for plan in plans if plan.indexes or plan.full_scans]
    assert reads
    for plan in reads:
        # By `_id` (`<day>:<seq>`): DocumentDB may read it through any index holding `_id`.
        assert plan.indexes, plan.stages
        assert not plan.full_scans, plan.full_scans
