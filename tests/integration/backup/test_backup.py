"""Backup and restore on the real stack, through the command line an operator uses.

Backup -> wipe the database (drop it) -> restore into it and an empty bucket -> the same
documents, the same file hashes, and the portal lists and serves them. The source gets its
own database and bucket (not the session's), so the wipe touches nothing else.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import cli, unique
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.asgi import create_app
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.holds import HoldStore
from mailbox_service.wiring.services import Services
from notify_fixtures import eventually


def with_storage(settings: Settings, database: str, bucket: str) -> Settings:
    return msgspec.structs.replace(
        settings,
        mongo=msgspec.structs.replace(settings.mongo, database=database),
        s3=msgspec.structs.replace(settings.s3, bucket=bucket),
    )


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "MAILBOX_MONGO_DATABASE": settings.mongo.database,
        "MAILBOX_S3_BUCKET": settings.s3.bucket,
    }


@dataclass
class Source:
    settings: Settings
    services: Services
    client: AsyncTestClient[Any]
    key: str
    accounts: list[str]
    documents: list[str]


@pytest.fixture
async def source(settings: Settings) -> AsyncIterator[Source]:
    suffix = unique("bk").lower()
    own = with_storage(settings, suffix.replace("-", "_"), suffix)
    services = Services.build(own)
    await Migrator(
        MigrationContext(own, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    _, key = await services.api_keys.create("backup-test", ["ingest"])
    accounts = [unique("acct"), unique("acct")]
    for account in accounts:
        await services.accounts.update(
            account, by="test", paperless=True, email=f"{account}@example.org"
        )
    async with AsyncTestClient(app=create_app(own), timeout=30) as client:
        documents = [
            await ingest(client, key, accounts[0]),
            await ingest(client, key, accounts[0], kind="letter"),
            await ingest(client, key, accounts[1]),
        ]
        await HoldStore(services.database).set_document(documents[2], "audit 2026", "test")
        yield Source(own, services, client, key, accounts, documents)
    await services.mongo.drop_database(own.mongo.database)
    await services.close()


async def snapshot_of(services: Services, name: str) -> dict[str, Any]:
    return {doc["_id"]: doc async for doc in services.database.db[name].find({})}


async def blob_sha256(services: Services, key: str) -> str:
    digest = hashlib.sha256()
    async for chunk in services.blobs.stream(key):
        digest.update(chunk)
    return digest.hexdigest()


async def run(*args: str, env: dict[str, str], check: bool = True) -> Any:
    return await asyncio.to_thread(cli, *args, env=env, check=check)


async def test_backup_wipe_restore_gives_back_the_same_documents(
    source: Source, settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "backup"
    # Portal reads leave audit entries: the trail is backed up and must verify after restore.
    listed = await source.client.get(
        "/v1/mailbox/documents", headers=bearer(portal_token(source.settings, *source.accounts))
    )
    assert listed.status_code == 200

    # The app's audit trail writes its buffer every second, off the request: wait for the
    # entry (and with it everything recorded before it) to be in the database.
    async def listed_entries() -> int:
        return await source.services.database.audit.count_documents({"action": "mailbox.listed"})

    await eventually(listed_entries, lambda n: n >= 1, within=15, what="the portal read audited")
    first = await run("backup", str(directory), env=env_of(source.settings))
    assert "documents 3" in first.stdout
    assert "3 new" in first.stdout

    # A second backup into the same directory copies only the new file.
    source.documents.append(await ingest(source.client, source.key, source.accounts[1]))
    await asyncio.sleep(1.1)  # snapshot ids have one-second resolution
    second = await run("backup", str(directory), env=env_of(source.settings))
    assert "documents 4" in second.stdout
    assert "4 referenced" in second.stdout
    assert "1 new" in second.stdout
    assert len(list((directory / "blobs").glob("*/*"))) == 4
    snapshots = sorted(p.name for p in (directory / "snapshots").iterdir())
    assert len(snapshots) == 2
    manifest = json.loads((directory / "snapshots" / snapshots[1] / "manifest.json").read_text())
    assert manifest["collections"]["documents"]["count"] == 4
    assert manifest["collections"]["accounts"]["count"] == 2
    assert manifest["problems"] == []

    verified = await run("backup", "verify", str(directory), env=env_of(source.settings))
    assert "2 snapshots" in verified.stdout
    assert verified.stdout.strip().endswith("ok")

    before = {
        name: await snapshot_of(source.services, name)
        for name in ("documents", "accounts", "api_keys")
    }
    hashes = {
        doc_id: await blob_sha256(source.services, doc["blob"]["key"])
        for doc_id, doc in before["documents"].items()
    }

    # Wipe: drop the database; restore into it and into an empty bucket.
    await source.services.mongo.drop_database(source.settings.mongo.database)
    target = with_storage(settings, source.settings.mongo.database, unique("bk-restored").lower())
    restored = await run("restore", str(directory), "--verify", env=env_of(target))
    assert "restored snapshot" in restored.stdout
    assert "documents 4" in restored.stdout

    services = Services.build(target)
    try:
        after = {name: await snapshot_of(services, name) for name in before}
        minio, bucket = services.blobs.client, target.s3.bucket
        for doc_id, doc in after["documents"].items():
            # The file has a new S3 version in the new bucket, and the metadata says which.
            stat = await asyncio.to_thread(minio.stat_object, bucket, doc["blob"]["key"])
            assert doc["blob"].pop("version_id", None) == stat.version_id
            before["documents"][doc_id]["blob"].pop("version_id", None)
        for name, documents in before.items():
            assert after[name] == documents, name
        for doc_id, doc in before["documents"].items():
            assert await blob_sha256(services, doc["blob"]["key"]) == hashes[doc_id]
            assert hashes[doc_id] == doc["blob"]["sha256"]
        # Write-once files are locked again until their retention ends (the bucket was made
        # with object locking by the migrations); the held invoice is under an S3 legal hold.
        assert "4 write-once files locked" in restored.stdout
        for doc_id, doc in before["documents"].items():
            retention = await asyncio.to_thread(
                minio.get_object_retention, bucket, doc["blob"]["key"]
            )
            assert retention is not None
            assert retention.retain_until_date == doc["retain_until"]
            held = await asyncio.to_thread(
                minio.is_object_legal_hold_enabled, bucket, doc["blob"]["key"]
            )
            assert held == (doc_id == source.documents[2])
        # Indexes came back with the migrations: the idempotency key is unique again.
        indexes = await services.database.documents.index_information()
        assert indexes["source_key_unique"]["unique"]

        async with AsyncTestClient(app=create_app(target), timeout=30) as client:
            token = portal_token(target, *source.accounts)
            page = await client.get("/v1/mailbox/documents?limit=50", headers=bearer(token))
            assert page.status_code == 200, page.text
            assert {item["id"] for item in page.json()["items"]} == set(before["documents"])
            for doc_id in before["documents"]:
                content = await client.get(
                    f"/v1/mailbox/documents/{doc_id}/content", headers=bearer(token)
                )
                assert content.status_code == 200
                assert hashlib.sha256(content.content).hexdigest() == hashes[doc_id]

        entry = None
        for _ in range(50):
            entry = await services.database.audit.find_one({"action": "backup.restored"})
            if entry:
                break
            await asyncio.sleep(0.2)
        assert entry is not None
        assert entry["details"]["inserted"]["documents"] == 4

        audit = await run("audit", "verify", env=env_of(target))
        assert " ok " in audit.stdout
        assert await services.database.audit.count_documents({"action": "mailbox.listed"}) >= 1

        # Into a database that holds data: refused, unless --merge (then all is skipped).
        refused = await run("restore", str(directory), env=env_of(target), check=False)
        assert refused.returncode == 1
        assert "refusing to restore: collection" in refused.stderr
        assert "--merge" in refused.stderr
        merged = await run("restore", str(directory), "--merge", env=env_of(target))
        assert "documents 0" in merged.stdout
        assert "documents 4" in merged.stdout.split("skipped (already there):")[1]
        assert await services.database.documents.count_documents({}) == 4
    finally:
        await services.close()


async def test_verify_names_a_missing_and_an_altered_file(source: Source, tmp_path: Path) -> None:
    directory = tmp_path / "backup"
    await run("backup", str(directory), env=env_of(source.settings))
    assert (await run("backup", "verify", str(directory), env={})).returncode == 0

    damaged = tmp_path / "damaged"
    shutil.copytree(directory, damaged)
    blob = sorted((damaged / "blobs").glob("*/*"))[0]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    (snapshot,) = (damaged / "snapshots").iterdir()
    (snapshot / "accounts.jsonl.gz").unlink()

    result = await run("backup", "verify", str(damaged), env={}, check=False)
    assert result.returncode == 1
    assert f"altered file blobs/{blob.parent.name}/{blob.name}" in result.stderr
    assert f"missing file snapshots/{snapshot.name}/accounts.jsonl.gz" in result.stderr

    # An altered metadata file is named too, and restore --verify refuses the snapshot.
    documents = snapshot / "documents.jsonl.gz"
    lines = gzip.decompress(documents.read_bytes()).splitlines(keepends=True)
    documents.write_bytes(gzip.compress(b"".join(lines[:-1])))
    result = await run("backup", "verify", str(damaged), env={}, check=False)
    assert f"altered file snapshots/{snapshot.name}/documents.jsonl.gz" in result.stderr
    target_env = {"MAILBOX_MONGO_DATABASE": unique("never").replace("-", "_")}
    refused = await run("restore", str(damaged), "--verify", env=target_env, check=False)
    assert refused.returncode == 1
    assert "verification failed: nothing restored" in refused.stderr


async def test_restore_of_an_empty_directory_says_so(tmp_path: Path) -> None:
    result = await run("restore", str(tmp_path), env={}, check=False)
    assert result.returncode == 1
    assert "holds no complete backup snapshot" in result.stderr
