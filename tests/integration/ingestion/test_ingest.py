"""POST /v1/documents against the real stack: the happy path, idempotency and delivery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app_fixtures import invoice_metadata, post_document, sample_pdf, unique
from mailbox_service.wiring.services import Services


async def test_new_document_is_stored_with_blob_and_outbox(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account, title="November invoice")
    pdf = sample_pdf("november")
    response = await post_document(client, ingest_key, meta, pdf)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["delivery"] == "digital"
    assert body["reason"] is None
    assert body["size"] == len(pdf)
    assert body["content_type"] == "application/pdf"
    assert body["created_at"].endswith("Z")

    stored = await services.documents.record(body["id"])
    assert stored is not None
    assert stored["source"] == "test-ingest"
    assert stored["origin"] == "api"
    assert stored["title"] == "November invoice"
    assert stored["summary"]["total_amount"] == "84.20"
    assert stored["notifications"]["email"]["status"] == "pending"
    assert stored["notifications"]["realtime"]["status"] == "pending"
    assert stored["blob"]["sha256"] == body["sha256"]
    chunks = [c async for c in services.blobs.stream(stored["blob"]["key"])]
    assert b"".join(chunks) == pdf


async def test_print_delivery_names_the_reason(
    client: Any, ingest_key: str, services: Services
) -> None:
    no_consent = unique("acct")
    response = await post_document(client, ingest_key, invoice_metadata(no_consent))
    assert response.status_code == 201
    assert response.json()["delivery"] == "print"
    assert "paperless" in response.json()["reason"]
    stored = await services.documents.record(response.json()["id"])
    assert stored is not None
    assert stored["notifications"]["email"]["status"] == "skipped"

    consent_no_email = unique("acct")
    await services.accounts.update(consent_no_email, by="test", paperless=True)
    response = await post_document(client, ingest_key, invoice_metadata(consent_no_email))
    assert response.json()["delivery"] == "print"
    assert "email" in response.json()["reason"]

    # A recipient address on the document is enough when the account has consent.
    response = await post_document(
        client,
        ingest_key,
        invoice_metadata(consent_no_email, recipient={"email": "kim@example.org", "locale": "de"}),
    )
    assert response.json()["delivery"] == "digital"


async def test_notify_false_skips_every_channel(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    response = await post_document(
        client, ingest_key, invoice_metadata(paperless_account, notify=False)
    )
    stored = await services.documents.record(response.json()["id"])
    assert stored is not None
    assert {s["status"] for s in stored["notifications"].values()} == {"skipped"}


async def test_identical_replay_answers_200_with_the_same_id(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account)
    pdf = sample_pdf("replay")
    first = await post_document(client, ingest_key, meta, pdf)
    second = await post_document(client, ingest_key, meta, pdf)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    count = await services.database.documents.count_documents({"source_ref": meta["source_ref"]})
    assert count == 1


async def test_same_source_ref_with_other_content_is_a_conflict(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account)
    assert (await post_document(client, ingest_key, meta, sample_pdf("a"))).status_code == 201
    other_file = await post_document(client, ingest_key, meta, sample_pdf("b"))
    assert other_file.status_code == 409
    assert other_file.json()["error"]["field"] == "source_ref"
    meta["attributes"]["total_amount"] = "99.00"
    other_meta = await post_document(client, ingest_key, meta, sample_pdf("a"))
    assert other_meta.status_code == 409


async def test_racing_identical_requests_store_one_document(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account)
    pdf = sample_pdf("race")
    blobs_before = await _blob_count(services)
    responses = await asyncio.gather(
        *(post_document(client, ingest_key, meta, pdf) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {200, 201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert (
        await services.database.documents.count_documents({"source_ref": meta["source_ref"]}) == 1
    )
    # The losers removed their blobs again.
    assert await _blob_count(services) == blobs_before + 1


async def test_source_comes_from_the_key_so_two_senders_may_share_a_ref(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    _, other_key = await services.api_keys.create("other-sender", ["ingest"])
    meta = invoice_metadata(paperless_account)
    first = await post_document(client, ingest_key, meta)
    second = await post_document(client, other_key, meta)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_issued_at_is_kept_and_title_defaults_from_the_type(
    client: Any, ingest_key: str, services: Services, paperless_account: str
) -> None:
    meta = invoice_metadata(paperless_account, issued_at="2016-03-01T09:30:00+01:00")
    response = await post_document(client, ingest_key, meta)
    stored = await services.documents.record(response.json()["id"])
    assert stored is not None
    assert stored["issued_at"].isoformat() == "2016-03-01T08:30:00+00:00"
    assert stored["title"] == f"Invoice {meta['attributes']['invoice_number']}"
    assert stored["retain_until"].year == 2026


async def test_document_types_lists_schemas(client: Any, ingest_key: str) -> None:
    response = await client.get(
        "/v1/document-types", headers={"Authorization": f"Bearer {ingest_key}"}
    )
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()["items"]}
    assert {"invoice", "contract_letter", "shipment_document"} <= set(types)
    schema = json.dumps(types["invoice"]["attributes_schema"])
    assert "due_date" in schema
    assert "total_amount" in schema
    assert types["invoice"]["content_types"] == ["application/pdf"]


async def _blob_count(services: Services) -> int:
    return await asyncio.to_thread(
        lambda: sum(
            1 for _ in services.blobs.client.list_objects(services.blobs.bucket, recursive=True)
        )
    )
