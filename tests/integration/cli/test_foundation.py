"""The foundation: health, migrations and operator CLI commands against the real stack."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click import Group
from click.testing import CliRunner

from app_fixtures import cli, invoice_metadata, post_document, unique
from mailbox_service.cli import main
from mailbox_service.storage.api_keys import ApiKeyStore
from mailbox_service.wiring.services import Services


async def test_live_and_ready_list_each_dependency(client: Any) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"mongodb", "minio", "redis"}
    assert all(check["status"] == "up" for check in checks.values())


@pytest.mark.parametrize(
    ("server", "dependency"), [("redis", "redis"), ("minio", "minio"), ("ferretdb", "mongodb")]
)
async def test_ready_is_503_naming_the_stopped_server(
    client: Any, stack: Any, server: str, dependency: str
) -> None:
    stack.stop(server)
    try:
        response = await client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["failed"] == [dependency]
        assert response.json()["checks"][dependency]["status"] == "down"
    finally:
        stack.start(server)
    assert (await client.get("/health/ready")).status_code == 200


def _command_paths(group: Group, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, Group):
            found += _command_paths(command, [*path, name])
        else:
            found.append([*path, name])
    return found


def test_every_command_has_help() -> None:
    paths = _command_paths(main, [])
    assert ["keys", "create"] in paths
    for path in paths:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Usage:" in result.output


async def test_schema_has_stable_operation_ids(client: Any) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    operations = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert "ingestDocument" in operations
    assert len(operations) == len(set(operations))


def test_migrate_twice_applies_nothing_the_second_time(services: Services) -> None:
    # The session already migrated; a fresh database shows the first run too.
    env = {"MAILBOX_MONGO_DATABASE": unique("migrate").replace("-", "_")}
    first = cli("migrate", env=env)
    assert "applied  0001_initial" in first.stdout
    second = cli("migrate", env=env)
    assert second.stdout.strip() == "nothing to apply"
    status = cli("migrate", "--status", env=env)
    assert "applied  0001_initial" in status.stdout
    assert "pending" not in status.stdout


async def test_key_lifecycle_through_the_cli(client: Any, paperless_account: str) -> None:
    created = cli("keys", "create", "--source", "erp-north")
    secret = created.stdout.strip()
    assert secret.startswith("mbx_")
    assert "\n" not in secret
    key_id = secret.split("_")[1]

    listed = cli("keys", "list").stdout
    assert key_id in listed
    assert "erp-north" in listed
    assert secret not in listed

    ok = await post_document(client, secret, invoice_metadata(paperless_account))
    assert ok.status_code == 201

    assert cli("keys", "revoke", key_id).stdout.strip() == f"revoked {key_id}"
    refused = await post_document(client, secret, invoice_metadata(paperless_account))
    assert refused.status_code == 401

    again = cli("keys", "revoke", key_id, check=False)
    assert again.returncode == 1
    assert "no active key" in again.stderr


def test_bad_source_name_is_a_usage_error() -> None:
    result = cli("keys", "create", "--source", "Has Spaces", check=False)
    assert result.returncode == 2
    assert "--source" in result.stderr


async def test_accounts_set_records_consent_history(services: Services) -> None:
    account_id = unique("acct")
    cli(
        "accounts", "set", account_id, "--paperless", "--email", "ann@example.org", "--locale", "de"
    )
    cli("accounts", "set", account_id, "--no-paperless")
    account = await services.accounts.get(account_id)
    assert account is not None
    assert account.paperless is False
    assert account.email == "ann@example.org"
    assert [c.paperless for c in account.consent_history] == [True, False]
    assert all(c.by == "operator-cli" for c in account.consent_history)

    bad = cli("accounts", "set", account_id, "--email", "x@y\r\nBcc: z@w.org", check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: email:")


async def test_api_key_cache_trusts_a_checked_key_only_for_its_ttl(services: Services) -> None:
    cached = ApiKeyStore(services.database, cache_seconds=0.5)
    key, secret = await services.api_keys.create("cached-sender", ["ingest"])
    assert await cached.authenticate(secret) is not None
    await services.api_keys.revoke(key.key_id)
    # Still remembered within the TTL (one node may serve a revoked key this long)...
    assert await cached.authenticate(secret) is not None
    await asyncio.sleep(0.6)
    # ...and refused afterwards.
    assert await cached.authenticate(secret) is None
    assert await cached.authenticate("mbx_unknown_x") is None
