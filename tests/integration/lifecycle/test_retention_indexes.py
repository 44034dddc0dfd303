"""The purge reads expired documents through the `retain_until` index, one batch per page.

A database of this module's own (every migration applied) holds SEED documents whose
`retain_until` is spread over the next years plus EXPIRED ones already past it; the real
RetentionPurge runs through a client whose commands are recorded, and each recorded query on
`documents` is explained (tests/explain_plans.py reads the plan of either engine).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from app_fixtures import unique
from explain_plans import CommandLog, explain
from mailbox_service.clock import utcnow
from mailbox_service.lifecycle.retention import RetentionPurge
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.document_lifecycle import RETAIN_UNTIL_INDEX
from mailbox_service.storage.mongo import Collections, Doc, client_options
from mailbox_service.wiring.services import Services

SEED = 3_000
EXPIRED = 30
TYPES = ("invoice", "contract_letter", "shipment_document")


def seed_document(n: int, retain_until: dt.datetime) -> Doc:
    doc_id = uuid.uuid4().hex
    return {
        "_id": doc_id,
        "type": TYPES[n % 3],
        "source": "ix",
        "source_key": f"ix\x1f{doc_id}",
        "account_id": f"acct-{n % 50}",
        "blob": {"key": f"documents/{doc_id[:2]}/{doc_id}", "sha256": "0" * 64},
        "hold": None,
        "retain_until": retain_until,
    }


@dataclass
class Explained:
    log: CommandLog
    db: Any
    purge: RetentionPurge


@pytest.fixture(scope="module")
async def explained(settings: Settings, services: Services) -> AsyncIterator[Explained]:
    log = CommandLog()
    options = client_options(settings.mongo, "retention-ix")
    options["event_listeners"] = [*options.get("event_listeners", []), log]
    client: AsyncMongoClient[Doc] = AsyncMongoClient(settings.mongo.url, **options)
    name = unique("retentionix").replace("-", "_")
    collections = Collections.of(client, name)
    now = utcnow()
    try:
        await Migrator(
            MigrationContext(settings, collections, services.blobs), migrations_dir()
        ).apply_pending()
        docs = [seed_document(n, now + dt.timedelta(hours=n + 1)) for n in range(SEED)]
        docs += [seed_document(n, now - dt.timedelta(days=1, hours=n)) for n in range(EXPIRED)]
        await collections.documents.insert_many(docs)
        # The blobs do not exist: their deletes are no-ops, the queries are what is judged.
        yield Explained(
            log,
            collections.db,
            RetentionPurge(collections, services.blobs, services.registry, batch_size=10),
        )
    finally:
        await client.drop_database(name)
        await client.close()


async def test_plan_and_purge_read_the_retain_until_index(explained: Explained) -> None:
    explained.log.clear()
    plan = await explained.purge.plan(utcnow())
    assert sum(plan.purge.values()) == EXPIRED
    report = await explained.purge.run(utcnow())
    assert report.total == EXPIRED

    sent = [s for s in explained.log.queries() if s.command.get(s.name) == "documents"]
    reads = [s for s in sent if s.name == "find" and "retain_until" in s.command["filter"]]
    # plan + (3 pages + 1 empty) for the mutable types' pass + the same for write-once ones.
    assert len(reads) >= 5
    for read in reads:
        found = await explain(explained.db, read)
        assert found.uses(RETAIN_UNTIL_INDEX), (found.stages, found.indexes, found.full_scans)
    pages = [r for r in reads if r.command.get("singleBatch")]
    assert pages, "purge pages are single-batch reads"
    assert all(page.cursor_id == 0 for page in pages), "a purge page left a cursor open"
    deletes = [s for s in sent if s.name == "delete"]
    assert deletes
    for delete in deletes:
        found = await explain(explained.db, delete)
        assert found.indexes, found.stages
        assert not found.full_scans, found.full_scans
