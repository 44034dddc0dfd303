"""Blob first, then metadata: a failed metadata write leaves no blob; the sweep removes orphans."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from app_fixtures import cli, invoice_metadata, post_document, sample_pdf
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.service import IngestService
from mailbox_service.ingestion.upload import receive_path
from mailbox_service.storage.documents import DocumentStore
from mailbox_service.storage.stored_document import StoredDocument
from mailbox_service.wiring.services import Services


class _FailingInserts(DocumentStore):
    """The real store, except that the metadata write fails as if MongoDB went away."""

    async def insert(self, document: StoredDocument) -> None:
        raise ConnectionError("MongoDB went away")


async def _keys(services: Services) -> set[str]:
    return await asyncio.to_thread(
        lambda: {
            o.object_name or ""
            for o in services.blobs.client.list_objects(services.blobs.bucket, recursive=True)
        }
    )


async def test_failed_metadata_write_removes_the_blob(services: Services, tmp_path: Any) -> None:
    service = IngestService(
        services.registry,
        _FailingInserts(services.database),
        services.accounts,
        services.blobs,
        services.queue,
    )
    path = tmp_path / "a.pdf"
    path.write_bytes(sample_pdf("consistency"))
    before = await _keys(services)
    with pytest.raises(ConnectionError):
        await service.accept(
            convert_metadata(invoice_metadata("A1")), receive_path(path, 1 << 20), source="t"
        )
    assert await _keys(services) == before


async def test_sweep_removes_only_orphans(services: Services, client: Any, ingest_key: str) -> None:
    owned = await post_document(client, ingest_key, invoice_metadata("A1"))
    owned_doc = await services.documents.record(owned.json()["id"])
    assert owned_doc is not None
    orphan_key = "documents/zz/orphan-from-a-crash"
    data = sample_pdf("orphan")
    await services.blobs.put(orphan_key, io.BytesIO(data), len(data), "application/pdf")

    young = cli("sweep", "--grace", "3600")
    assert "removed 0" in young.stdout
    assert await services.blobs.exists(orphan_key)

    dry = cli("sweep", "--grace", "0", "--dry-run")
    assert f"would remove {orphan_key}" in dry.stdout
    assert await services.blobs.exists(orphan_key)

    result = cli("sweep", "--grace", "0")
    assert f"removed {orphan_key}" in result.stdout
    assert not await services.blobs.exists(orphan_key)
    assert await services.blobs.exists(owned_doc["blob"]["key"])
