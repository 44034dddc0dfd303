"""`mailbox-service accounts erase` on the real stack: what the report names as kept is exactly
what is left, everything else is gone with its blob, the account loses its personal data."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

from litestar.testing import AsyncTestClient

from app_fixtures import cli, post_document, sample_pdf, unique
from mailbox_fixtures import ingest
from mailbox_service.storage.holds import HoldStore
from mailbox_service.wiring.services import Services

KEPT_LINE = re.compile(r"^kept (\w+) (\w+) until (\S+): (.+)$")


async def ingest_shipment(client: AsyncTestClient[Any], key: str, account_id: str) -> str:
    meta = {
        "type": "shipment_document",
        "source_ref": unique("ref"),
        "account_id": account_id,
        "notify": False,
        "attributes": {"shipment_number": unique("SHP"), "document_kind": "delivery_note"},
    }
    response = await post_document(client, key, meta, sample_pdf(unique("pdf")))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def account_documents(services: Services, account_id: str) -> dict[str, Any]:
    cursor = services.database.documents.find({"account_id": account_id})
    return {doc["_id"]: doc async for doc in cursor}


def kept_in(output: str) -> dict[str, str]:
    kept = {}
    for line in output.splitlines():
        match = KEPT_LINE.match(line)
        if match:
            kept[match.group(1)] = match.group(4)
    return kept


async def test_erase_keeps_exactly_what_the_report_names(
    client: AsyncTestClient[Any], ingest_key: str, services: Services, paperless_account: str
) -> None:
    account = paperless_account
    now = dt.datetime.now(dt.UTC)
    seven_years_ago = now - dt.timedelta(days=365 * 7)
    # Kept: an invoice within its ten years (tax law).
    fresh_invoice = await ingest(client, ingest_key, account)
    # Deleted: a contract letter past its six years; shipment documents have no legal retention.
    old_letter = await ingest(client, ingest_key, account, kind="letter", issued_at=seven_years_ago)
    shipment = await ingest_shipment(client, ingest_key, account)
    # Kept by a hold although nothing else would keep it.
    held_shipment = await ingest_shipment(client, ingest_key, account)
    await HoldStore(services.database).set_document(held_shipment, "court case 4711", "test")
    other_account = unique("acct")
    bystander = await ingest_shipment(client, ingest_key, other_account)

    before = await account_documents(services, account)
    assert set(before) == {fresh_invoice, old_letter, shipment, held_shipment}

    dry = await asyncio.to_thread(cli, "accounts", "erase", account, "--dry-run")
    assert "delete 2 documents (contract_letter 1, shipment_document 1), keep 2" in dry.stdout
    assert "dry run: nothing changed" in dry.stdout
    assert set(await account_documents(services, account)) == set(before)

    # No terminal and no --yes: refuse, change nothing.
    refused = await asyncio.to_thread(cli, "accounts", "erase", account, check=False, input="")
    assert refused.returncode == 1
    assert "no --yes" in refused.stderr
    assert set(await account_documents(services, account)) == set(before)

    done = await asyncio.to_thread(cli, "accounts", "erase", account, "--yes")
    kept = kept_in(done.stdout)
    assert kept == {
        fresh_invoice: "legal retention",
        held_shipment: "document hold: court case 4711",
    }
    after = await account_documents(services, account)
    assert set(after) == set(kept)
    assert "erased: deleted 2 documents, kept 2" in done.stdout

    for document_id in (old_letter, shipment):
        key = before[document_id]["blob"]["key"]
        assert not await services.blobs.exists(key)
        tombstone = await services.database.tombstones.find_one({"_id": document_id})
        assert tombstone is not None
        assert tombstone["reason"] == "erased"
    for document_id in kept:
        assert await services.blobs.exists(before[document_id]["blob"]["key"])
    assert await services.database.documents.find_one({"_id": bystander}) is not None

    record = await services.database.accounts.find_one({"_id": account})
    assert record is not None
    assert {"email", "locale", "paperless", "consent_history"}.isdisjoint(record)
    assert record["erased_at"] is not None

    entry = None
    for _ in range(50):
        entry = await services.database.audit.find_one(
            {"action": "account.erased", "account_id": account}
        )
        if entry:
            break
        await asyncio.sleep(0.2)
    assert entry is not None
    assert entry["details"]["deleted"] == 2
    assert entry["details"]["kept_count"] == 2


async def test_erase_refuses_an_unknown_account(services: Services) -> None:
    result = await asyncio.to_thread(
        cli, "accounts", "erase", unique("nobody"), "--yes", check=False
    )
    assert result.returncode == 1
    assert "no account" in result.stderr


async def test_an_account_hold_keeps_every_document(
    client: AsyncTestClient[Any], ingest_key: str, services: Services, paperless_account: str
) -> None:
    account = paperless_account
    shipment = await ingest_shipment(client, ingest_key, account)
    invoice = await ingest(client, ingest_key, account)
    await HoldStore(services.database).set_account(account, "insolvency file 12", "test")
    try:
        done = await asyncio.to_thread(cli, "accounts", "erase", account, "--yes")
        kept = kept_in(done.stdout)
        assert kept == {
            shipment: "account hold: insolvency file 12",
            invoice: "account hold: insolvency file 12",
        }
        assert set(await account_documents(services, account)) == {shipment, invoice}
        record = await services.database.accounts.find_one({"_id": account})
        assert record is not None
        assert "email" not in record
    finally:
        await HoldStore(services.database).release_account(account)
