"""Retention purge, legal holds and write-once files on the real stack (FerretDB, MinIO).

Every test here runs in its own database and its own bucket (created by the migrations, so
with object locking): a purge `--at` a far future time must not reach other tests' documents,
and the lock tests need a bucket created with locking.

MinIO enforces Object Lock on its own clock, so documents that must become purgeable get a
`retain_until` a few seconds ahead (issued_at = now - retention + seconds) and the tests wait
for it; nothing bypasses a lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from minio.error import S3Error
from minio.retention import Retention

from app_fixtures import cli, invoice_metadata, sample_pdf, unique
from mailbox_service.asgi import create_app
from mailbox_service.clock import utcnow
from mailbox_service.doctypes.invoice import Invoice
from mailbox_service.errors import Conflict
from mailbox_service.ingestion.orphans import sweep_orphans
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.lifecycle.schedule import PurgeLease, purge_if_due
from mailbox_service.mailbox.content import open_blob
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import DeleteRefused
from mailbox_service.storage.holds import HoldStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services


@pytest.fixture(scope="module")
async def isolated(settings: Settings) -> AsyncIterator[Services]:
    database = unique("retention").replace("-", "_")
    bucket = unique("lock")
    own = msgspec.structs.replace(
        settings,
        mongo=msgspec.structs.replace(settings.mongo, database=database),
        s3=msgspec.structs.replace(settings.s3, bucket=bucket),
    )
    services = Services.build(own)
    await Migrator(
        MigrationContext(own, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    yield services
    await services.mongo.drop_database(database)
    await services.close()


@pytest.fixture(scope="module")
def own_env(isolated: Services) -> dict[str, str]:
    return {
        "MAILBOX_MONGO_DATABASE": isolated.settings.mongo.database,
        "MAILBOX_S3_BUCKET": isolated.settings.s3.bucket,
    }


@pytest.fixture(scope="module")
async def own_client(isolated: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(isolated.settings), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def own_admin_key(isolated: Services) -> str:
    _, secret = await isolated.api_keys.create("retention-admin", ["admin"])
    return secret


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def ingest(
    services: Services,
    account: str,
    *,
    expires_in: dt.timedelta | None = None,
    kind: str = "invoice",
    text: str = "retention",
) -> Doc:
    """Store a document whose retain_until is `expires_in` from now (default: its type's
    full retention). Shipment documents' attributes are small and fixed here."""
    pdf = sample_pdf(f"{text} {unique()}")
    overrides: dict[str, Any] = {}
    if kind == "shipment_document":
        overrides = {"type": kind, "attributes": shipment_attributes()}
    if expires_in is not None:
        retention = services.registry.get(kind).retention
        issued = utcnow() - retention + expires_in
        overrides["issued_at"] = issued.isoformat().replace("+00:00", "Z")
    metadata = convert_metadata(invoice_metadata(account, **overrides))
    incoming = IncomingFile(
        data=io.BytesIO(pdf),
        filename="file.pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        content_type="application/pdf",
    )
    outcome = await services.ingest.accept(metadata, incoming, source="retention", notify=False)
    return outcome.document


def shipment_attributes() -> dict[str, Any]:
    return {"shipment_number": unique("SHP"), "document_kind": "delivery_note"}


def versions(services: Services, key: str) -> list[Any]:
    client = services.blobs.client
    return [
        obj
        for obj in client.list_objects(services.blobs.bucket, prefix=key, include_version=True)
        if obj.object_name == key
    ]


async def wait_until(moment: dt.datetime) -> None:
    delay = (moment - utcnow()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.5)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_migration_creates_the_bucket_with_object_locking(isolated: Services) -> None:
    assert await isolated.blobs.object_lock_enabled()
    indexes = await isolated.database.documents.index_information()
    assert indexes["retain_until_purge"]["key"] == [("retain_until", 1)]


async def test_invoice_blob_is_locked_until_retain_until(isolated: Services) -> None:
    doc = await ingest(isolated, unique("acct"))
    retention = isolated.blobs.client.get_object_retention(
        isolated.blobs.bucket, doc["blob"]["key"]
    )
    assert retention is not None
    assert retention.mode == "GOVERNANCE"
    assert abs((retention.retain_until_date - doc["retain_until"]).total_seconds()) < 1
    assert Invoice.immutable_files


async def test_minio_refuses_to_delete_or_overwrite_a_locked_invoice(isolated: Services) -> None:
    doc = await ingest(isolated, unique("acct"))
    key = doc["blob"]["key"]
    client, bucket = isolated.blobs.client, isolated.blobs.bucket
    [original] = versions(isolated, key)

    # The service's own credentials: deleting the version, through the SDK or the BlobStore.
    with pytest.raises(S3Error) as refused:
        client.remove_object(bucket, key, version_id=original.version_id)
    assert refused.value.code in {"AccessDenied", "InvalidRequest"}, refused.value
    assert "retention" in str(refused.value).lower() or "lock" in str(refused.value).lower()
    with pytest.raises(DeleteRefused):
        await isolated.blobs.delete(key)
    # Shortening the retention is refused too.
    with pytest.raises(S3Error):
        client.set_object_retention(
            bucket,
            key,
            Retention("GOVERNANCE", utcnow() + dt.timedelta(days=1)),
            version_id=original.version_id,
        )

    # An overwrite only adds a version: the locked one stays, byte for byte.
    client.put_object(bucket, key, io.BytesIO(b"forged"), 6, content_type="application/pdf")
    kept = client.get_object(bucket, key, version_id=original.version_id)
    try:
        assert hashlib.sha256(kept.read()).hexdigest() == doc["blob"]["sha256"]
    finally:
        kept.close()
        kept.release_conn()
    with pytest.raises(S3Error):
        client.remove_object(bucket, key, version_id=original.version_id)
    # The portal's download path reads the version recorded at ingest, not the forged one.
    assert doc["blob"]["version_id"] == original.version_id
    chunks = await open_blob(isolated.blobs, key, 0, 0, version_id=doc["blob"]["version_id"])
    served = b"".join([chunk async for chunk in chunks])
    assert hashlib.sha256(served).hexdigest() == doc["blob"]["sha256"]


async def test_failed_ingest_still_removes_its_unlocked_blob(isolated: Services) -> None:
    """A conflict (same source_ref, other content) removes the blob it wrote: the lock is
    only applied once the metadata is stored."""
    account = unique("acct")
    meta = invoice_metadata(account)
    bucket, client = isolated.blobs.bucket, isolated.blobs.client

    def all_versions() -> int:
        return len(list(client.list_objects(bucket, recursive=True, include_version=True)))

    before = all_versions()
    outcomes = []
    for pdf in (sample_pdf("first"), sample_pdf("second")):
        incoming = IncomingFile(
            data=io.BytesIO(pdf),
            filename="f.pdf",
            size=len(pdf),
            sha256=hashlib.sha256(pdf).hexdigest(),
            content_type="application/pdf",
        )
        try:
            await isolated.ingest.accept(
                convert_metadata(meta), incoming, source="retention", notify=False
            )
            outcomes.append("stored")
        except Conflict:
            outcomes.append("conflict")
    assert outcomes == ["stored", "conflict"]
    assert all_versions() == before + 1


async def test_purge_at_removes_expired_documents_and_keeps_held_ones(
    isolated: Services, own_env: dict[str, str]
) -> None:
    account, held_account = unique("acct"), unique("acct")
    soon = dt.timedelta(seconds=3)
    expired = await ingest(isolated, account, expires_in=soon)
    held = await ingest(isolated, account, expires_in=soon)
    in_held_account = await ingest(isolated, held_account, expires_in=soon)
    shipment = await ingest(isolated, account, expires_in=soon, kind="shipment_document")
    # Expired at `at` (11 years on), but its file is locked for ten years of real time.
    current = await ingest(isolated, account)
    holds = HoldStore(isolated.database)
    cli("hold", "set", "--document", held["_id"], "--reason", "case 17", env=own_env)
    cli("hold", "set", "--account", held_account, "--reason", "audit 2026", env=own_env)
    listed = cli("hold", "list", env=own_env).stdout
    assert f"document {held['_id']}" in listed
    assert f"account {held_account}" in listed

    at_time = utcnow() + dt.timedelta(days=365 * 11)
    at = iso(at_time)
    await wait_until(max(d["retain_until"] for d in (expired, held, in_held_account, shipment)))
    # `current` and the invoices earlier tests of this module stored, all unheld.
    locked = await isolated.database.documents.count_documents(
        {"type": "invoice", "retain_until": {"$gt": utcnow(), "$lte": at_time}, "hold": None}
    )
    assert locked >= 1
    dry = cli("retention", "purge", "--at", at, "--dry-run", env=own_env).stdout
    assert f"invoice: purge 1, keep 2 held, {locked} file still locked" in dry
    assert "shipment_document: purge 1, keep 0 held, 0 file still locked" in dry
    assert "dry run: nothing deleted" in dry
    assert await isolated.documents.record(expired["_id"]) is not None

    # Not on a terminal and no --yes: refused, nothing deleted.
    refused = cli("retention", "purge", "--at", at, env=own_env, check=False)
    assert refused.returncode == 1
    assert "refusing" in refused.stderr
    assert await isolated.documents.record(expired["_id"]) is not None

    done = cli("retention", "purge", "--at", at, "--yes", env=own_env).stdout
    assert "purged invoice: 1" in done
    assert "purged shipment_document: 1" in done

    for gone in (expired, shipment):
        assert await isolated.documents.record(gone["_id"]) is None
        assert versions(isolated, gone["blob"]["key"]) == []
        tombstone = await isolated.database.tombstones.find_one({"_id": gone["_id"]})
        assert tombstone is not None
        assert tombstone["reason"] == "retention"
        assert tombstone["sha256"] == gone["blob"]["sha256"]
    for kept in (held, in_held_account, current):
        assert await isolated.documents.record(kept["_id"]) is not None
        assert await isolated.blobs.exists(kept["blob"]["key"])
        assert await isolated.database.tombstones.find_one({"_id": kept["_id"]}) is None
    assert await holds.is_held(await isolated.documents.record(held["_id"]) or {})
    audit = isolated.database.audit
    purged = await audit.find_one({"action": "retention.purged", "details.by": None})
    assert purged is not None
    assert purged["details"]["purged"] == {"invoice": 1, "shipment_document": 1}
    assert await audit.find_one({"action": "hold.set", "document_id": held["_id"]})

    # Released: the next run takes them.
    cli("hold", "release", "--document", held["_id"], env=own_env)
    cli("hold", "release", "--account", held_account, env=own_env)
    again = cli("retention", "purge", "--at", at, "--yes", env=own_env).stdout
    assert "purged invoice: 2" in again
    assert await isolated.documents.record(held["_id"]) is None


async def test_legal_hold_keeps_a_blob_past_its_retention(
    isolated: Services, own_client: AsyncTestClient[Any], own_admin_key: str
) -> None:
    doc = await ingest(isolated, unique("acct"), expires_in=dt.timedelta(seconds=3))
    key = doc["blob"]["key"]
    set_hold = await own_client.post(
        f"/v1/admin/holds/documents/{doc['_id']}",
        json={"reason": "subpoena 4711"},
        headers=auth(own_admin_key),
    )
    assert set_hold.status_code == 201, set_hold.text
    body = set_hold.json()
    assert body["scope"] == "document"
    assert body["id"] == doc["_id"]
    assert body["reason"] == "subpoena 4711"
    assert body["account_id"] == doc["account_id"]
    assert isolated.blobs.client.is_object_legal_hold_enabled(isolated.blobs.bucket, key)

    await wait_until(doc["retain_until"])
    with pytest.raises(DeleteRefused):  # retention over, the legal hold still refuses
        await isolated.blobs.delete(key)
    with pytest.raises(DeleteRefused):  # and no GOVERNANCE bypass lifts a legal hold
        await isolated.blobs.delete(key, bypass_governance=True)

    listed = (await own_client.get("/v1/admin/holds/", headers=auth(own_admin_key))).json()
    assert doc["_id"] in [h["id"] for h in listed["items"]]

    released = await own_client.delete(
        f"/v1/admin/holds/documents/{doc['_id']}", headers=auth(own_admin_key)
    )
    assert released.status_code == 200
    assert released.json()["reason"] == "subpoena 4711"
    assert not isolated.blobs.client.is_object_legal_hold_enabled(isolated.blobs.bucket, key)
    again = await own_client.delete(
        f"/v1/admin/holds/documents/{doc['_id']}", headers=auth(own_admin_key)
    )
    assert again.status_code == 404
    await isolated.blobs.delete(key)  # retention over and no hold: now it goes
    assert versions(isolated, key) == []


async def test_account_hold_api_and_bad_input(
    isolated: Services, own_client: AsyncTestClient[Any], own_admin_key: str, ingest_key: str
) -> None:
    account = unique("acct")
    doc = await ingest(isolated, account)
    headers = auth(own_admin_key)
    created = await own_client.post(
        f"/v1/admin/holds/accounts/{account}", json={"reason": "litigation"}, headers=headers
    )
    assert created.status_code == 201
    assert created.json()["scope"] == "account"
    assert isolated.blobs.client.is_object_legal_hold_enabled(
        isolated.blobs.bucket, doc["blob"]["key"]
    )
    assert await HoldStore(isolated.database).is_held(doc)

    blank = await own_client.post(
        f"/v1/admin/holds/accounts/{account}", json={"reason": "  "}, headers=headers
    )
    # Whitespace breaks the documented pattern of `reason`: a schema violation (400), named.
    assert blank.status_code == 400
    assert blank.json()["error"]["field"] == "reason"
    missing = await own_client.post(
        "/v1/admin/holds/documents/nosuchdocument", json={"reason": "x"}, headers=headers
    )
    assert missing.status_code == 404
    bad_id = await own_client.post(
        "/v1/admin/holds/accounts/%20bad", json={"reason": "x"}, headers=headers
    )
    assert bad_id.status_code == 422
    assert bad_id.json()["error"]["field"] == "account_id"
    assert (await own_client.get("/v1/admin/holds/")).status_code == 401

    released = await own_client.delete(f"/v1/admin/holds/accounts/{account}", headers=headers)
    assert released.status_code == 200
    assert not isolated.blobs.client.is_object_legal_hold_enabled(
        isolated.blobs.bucket, doc["blob"]["key"]
    )
    gone = await own_client.delete(f"/v1/admin/holds/accounts/{account}", headers=headers)
    assert gone.status_code == 404


async def test_forbidden_for_a_non_admin_key(
    own_client: AsyncTestClient[Any], isolated: Services
) -> None:
    _, ingest_only = await isolated.api_keys.create("retention-ingest", ["ingest"])
    answer = await own_client.get("/v1/admin/holds/", headers=auth(ingest_only))
    assert answer.status_code == 403


async def test_daily_run_lease_lets_one_worker_run_per_interval(isolated: Services) -> None:
    leases = isolated.database.leases
    await leases.delete_many({})
    await leases.insert_one(
        {
            "_id": "retention.purge",
            "until": dt.datetime.min.replace(tzinfo=dt.UTC),
            "done_at": dt.datetime.min.replace(tzinfo=dt.UTC),
        }
    )
    first = PurgeLease(isolated.database, lease_s=60, interval_s=3600)
    second = PurgeLease(isolated.database, lease_s=60, interval_s=3600)
    results = await asyncio.gather(first.claim(), second.claim())
    assert sorted(results) == [False, True]
    winner = first if results[0] else second
    await winner.finish()
    # Finished less than an interval ago: not due for anyone.
    assert not await first.claim()
    assert not await second.claim()


async def test_hold_body_errors_use_the_error_envelope(
    own_client: AsyncTestClient[Any], own_admin_key: str
) -> None:
    for body in ({}, {"reason": 5}, {"reasn": "typo"}, {"reason": "r" * 501}):
        answer = await own_client.post(
            "/v1/admin/holds/accounts/acct-1", json=body, headers=auth(own_admin_key)
        )
        assert answer.status_code in {400, 422}, answer.text
        error = answer.json()["error"]
        assert error["status"] == answer.status_code
        assert "reason" in error["message"], error


async def test_worker_daily_run_purges_once_per_interval(isolated: Services) -> None:
    """What the worker's PurgeThread calls every minute: a run when due, then none."""
    await isolated.database.leases.delete_many({})
    doc = await ingest(
        isolated, unique("acct"), expires_in=dt.timedelta(seconds=1), kind="shipment_document"
    )
    await wait_until(doc["retain_until"])
    # Daily, as in production (the suite's own settings turn the workers' run off).
    daily = msgspec.structs.replace(
        isolated.settings,
        retention=msgspec.structs.replace(isolated.settings.retention, purge_interval_s=86_400),
    )
    report = await purge_if_due(daily, isolated.registry)
    assert report is not None
    assert report.purged["shipment_document"] >= 1
    assert await isolated.documents.record(doc["_id"]) is None
    lease = await isolated.database.leases.find_one({"_id": "retention.purge"})
    assert lease is not None
    assert lease["done_at"] <= utcnow()
    assert await purge_if_due(daily, isolated.registry) is None
    entry = await isolated.database.audit.find_one(
        {"action": "retention.purged", "details.by": "worker"}
    )
    assert entry is not None
    assert entry["details"]["purged"]["shipment_document"] >= 1


async def test_orphan_sweep_leaves_a_locked_orphan_and_carries_on(isolated: Services) -> None:
    locked = await ingest(isolated, unique("acct"))
    plain = await ingest(isolated, unique("acct"), kind="shipment_document")
    # Both lose their metadata behind the service's back: only the unlocked file can go.
    await isolated.database.documents.delete_many({"_id": {"$in": [locked["_id"], plain["_id"]]}})
    report = await sweep_orphans(isolated.blobs, isolated.documents, dt.timedelta(0))
    assert plain["blob"]["key"] in report.removed
    assert locked["blob"]["key"] not in report.removed
    assert versions(isolated, plain["blob"]["key"]) == []
    assert await isolated.blobs.exists(locked["blob"]["key"])
