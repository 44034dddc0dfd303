"""accept_many (the backfill's door): a batch that fails midway keeps the invariant — every
stored document has its blob, and no blob is left for a document that was not stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app_fixtures import invoice_metadata, sample_pdf, unique
from mailbox_service.errors import Conflict, DependencyUnavailable
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.service import IngestOutcome, IngestService
from mailbox_service.ingestion.upload import receive_path
from mailbox_service.storage.documents import DocumentStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.stored_document import StoredDocument
from mailbox_service.wiring.services import Services


class _FlakyStore(DocumentStore):
    """The real store, except that insert_many stores the first half of a batch and then
    loses the connection, as a server restart in the middle of a bulk write would."""

    async def insert_many(self, documents: Sequence[StoredDocument]) -> dict[int, Doc]:
        documents = list(documents)
        await super().insert_many(documents[: len(documents) // 2])
        raise ConnectionError("connection lost in the middle of the batch")


def _items(tmp_path: Path, count: int, account: str) -> list[Any]:
    items = []
    for i in range(count):
        path = tmp_path / f"{i}.pdf"
        path.write_bytes(sample_pdf(f"batch {i}"))
        items.append((convert_metadata(invoice_metadata(account)), receive_path(path, 1 << 20)))
    return items


async def _blob_keys(services: Services) -> set[str]:
    return await asyncio.to_thread(
        lambda: {
            o.object_name or ""
            for o in services.blobs.client.list_objects(services.blobs.bucket, recursive=True)
        }
    )


async def test_batch_cut_short_keeps_blobs_of_stored_documents_only(
    services: Services, tmp_path: Path
) -> None:
    service = IngestService(
        services.registry,
        _FlakyStore(services.database),
        services.accounts,
        services.blobs,
        services.queue,
    )
    account = unique("acct")
    before = await _blob_keys(services)
    results = await service.accept_many(
        _items(tmp_path, 6, account), source="batch-test", notify=False
    )
    stored = [r for r in results if isinstance(r, IngestOutcome)]
    lost = [r for r in results if isinstance(r, DependencyUnavailable)]
    assert (len(stored), len(lost)) == (3, 3)
    assert all("connection lost" in str(r) for r in lost)

    documents = [d async for d in services.database.documents.find({"account_id": account})]
    assert len(documents) == 3
    added = await _blob_keys(services) - before
    assert added == {d["blob"]["key"] for d in documents}


async def test_batch_replays_and_conflicts_like_single_requests(
    services: Services, tmp_path: Path
) -> None:
    account = unique("acct")
    items = _items(tmp_path, 3, account)
    first = await services.ingest.accept_many(items, source="batch-test", notify=False)
    assert all(isinstance(r, IngestOutcome) and r.created for r in first)

    # Same batch again, insert-first: the unique index turns all three into replays.
    again = [
        (meta, receive_path(tmp_path / f"{i}.pdf", 1 << 20)) for i, (meta, _) in enumerate(items)
    ]
    replayed = await services.ingest.accept_many(again, source="batch-test", notify=False)
    assert [r.created for r in replayed if isinstance(r, IngestOutcome)] == [False] * 3
    assert {r.response.id for r in replayed if isinstance(r, IngestOutcome)} == {
        r.response.id for r in first if isinstance(r, IngestOutcome)
    }

    # Another file under a stored reference is a conflict, looked up first or not.
    changed_path = tmp_path / "changed.pdf"
    changed_path.write_bytes(sample_pdf("changed"))
    for look_up_first in (False, True):
        outcome = await services.ingest.accept_many(
            [(items[0][0], receive_path(changed_path, 1 << 20))],
            source="batch-test",
            notify=False,
            look_up_first=look_up_first,
        )
        assert isinstance(outcome[0], Conflict)
    count = await services.database.documents.count_documents({"account_id": account})
    assert count == 3
