"""(source, source_ref) is unique through `source_key` and its single-field unique index.

Migration 0004 moved the rule there from a compound unique index; these tests pin the resulting
schema, the key on every new document, and the migration itself on documents stored before it.
The replay (200) and conflict (409) answers are covered in test_ingest.py and test_backfill.py.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

from app_fixtures import invoice_metadata, sample_pdf, unique
from mailbox_service.backfill.runner import preflight
from mailbox_service.errors import ConfigurationError
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.service import IngestService
from mailbox_service.ingestion.upload import FileReceiver, IncomingFile
from mailbox_service.migrate import MigrationContext, discover
from mailbox_service.paths import migrations_dir
from mailbox_service.storage.documents import (
    DocumentStore,
    DuplicateSourceRef,
    blob_key,
    new_document_id,
    source_key,
)
from mailbox_service.storage.mongo import Collections
from mailbox_service.storage.stored_document import decode_document
from mailbox_service.wiring.services import Services


def migration(version: str) -> ModuleType:
    found = next(m for m in discover(migrations_dir()) if m.version == version)
    spec = importlib.util.spec_from_file_location(f"test_migration_{found.id}", found.path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def scratch(services: Services) -> AsyncIterator[MigrationContext]:
    """A fresh database with only migration 0001 applied: the schema before source_key."""
    name = unique("srckey").replace("-", "_")
    ctx = MigrationContext(services.settings, Collections.of(services.mongo, name), services.blobs)
    await migration("0001").up(ctx)
    yield ctx
    await services.mongo.drop_database(name)


def pdf_file() -> IncomingFile:
    receiver = FileReceiver("a.pdf", 1 << 20)
    receiver.feed(sample_pdf(unique("pdf")))
    return receiver.finish()


def old_document(source: str, ref: str) -> dict[str, Any]:
    """A document as stored before migration 0004: no `source_key`."""
    at = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    document_id = new_document_id()
    return {
        "_id": document_id,
        "source": source,
        "source_ref": ref,
        "account_id": "A1",
        "type": "invoice",
        "issued_at": at,
        "created_at": at,
        "blob": {"key": blob_key(document_id)},
        "delivery": {"mode": "digital"},
    }


async def test_the_unique_key_is_one_field(services: Services) -> None:
    indexes = await services.database.documents.index_information()
    assert indexes["source_key_unique"]["unique"] is True
    assert [(k, int(d)) for k, d in indexes["source_key_unique"]["key"]] == [("source_key", 1)]
    assert "source_ref_unique" not in indexes
    compound = [
        name for name, info in indexes.items() if info.get("unique") and len(info["key"]) > 1
    ]
    assert compound == []


async def test_ingested_documents_carry_their_key(services: Services) -> None:
    meta = convert_metadata(invoice_metadata(unique("acct"), notify=False))
    outcome = await services.ingest.accept(meta, pdf_file(), source="erp-key")
    stored = await services.documents.record(outcome.response.id)
    assert stored is not None
    assert stored["source_key"] == source_key("erp-key", meta.source_ref)
    assert stored["source_key"] == f"erp-key\x1f{meta.source_ref}"
    typed = decode_document(stored)
    assert await services.documents.find_by_source_ref("erp-key", meta.source_ref) == typed
    assert await services.documents.find_by_source_ref("erp-other", meta.source_ref) is None
    found = await services.documents.find_by_source_refs("erp-key", [meta.source_ref, "missing"])
    assert list(found) == [meta.source_ref]


async def test_a_second_document_with_the_pair_is_refused(services: Services) -> None:
    ref = unique("ref")
    first = {**old_document("erp-dup", ref), "source_key": source_key("erp-dup", ref)}
    await services.documents.insert_record(first)
    with pytest.raises(DuplicateSourceRef):
        await services.documents.insert_record({**first, "_id": new_document_id()})


async def test_migration_keys_old_documents_and_swaps_the_indexes(
    scratch: MigrationContext,
) -> None:
    documents = scratch.database.documents
    assert "source_ref_unique" in await documents.index_information()
    olds = [old_document("erp-a", f"r{i}") for i in range(5)] + [old_document("erp-b", "r0")]
    await documents.insert_many(olds)
    step = migration("0004")

    # Small write batches exercise the paging; the pairs are already unique.
    assert await step.add_source_keys(documents, batch=2) == len(olds)
    assert await step.add_source_keys(documents, batch=2) == 0
    await step.up(scratch)
    await step.up(scratch)  # re-running after a crash is harmless

    indexes = await documents.index_information()
    assert "source_ref_unique" not in indexes
    assert indexes["source_key_unique"]["unique"] is True
    async for doc in documents.find({}):
        assert doc["source_key"] == source_key(doc["source"], doc["source_ref"])
    store = DocumentStore(scratch.database)
    found = await store.find_by_source_ref("erp-b", "r0")
    assert found is not None
    assert found.id == olds[-1]["_id"]
    with pytest.raises(DuplicateSourceRef):
        await store.insert_record(
            {**old_document("erp-a", "r3"), "source_key": source_key("erp-a", "r3")}
        )


async def test_migration_on_documents_missing_the_key_without_old_index(
    scratch: MigrationContext,
) -> None:
    """A crash after step 1 (compound index dropped) and before the key: re-running finishes."""
    documents = scratch.database.documents
    await documents.drop_index("source_ref_unique")
    await documents.insert_many([old_document("erp-c", "x"), old_document("erp-c", "y")])
    await migration("0004").up(scratch)
    assert await documents.count_documents({"source_key": {"$exists": False}}) == 0
    assert "source_key_unique" in await documents.index_information()


async def test_backfill_refuses_a_database_without_the_key_index(
    services: Services, scratch: MigrationContext
) -> None:
    ingest = IngestService(
        services.registry,
        DocumentStore(scratch.database),
        services.accounts,
        services.blobs,
        services.queue,
    )
    with pytest.raises(ConfigurationError, match="source_key"):
        await preflight(ingest)
    await migration("0004").up(scratch)
    await preflight(ingest)
