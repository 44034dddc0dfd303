"""Every audited action leaves one entry with the right actor, account, document, client and
request id, on the real stack (the in-process app writes through its own buffer)."""

from __future__ import annotations

import json
from typing import Any

from litestar.testing import AsyncTestClient

from app_fixtures import cli, unique
from audit_fixtures import audit_entries
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.auth import mint_token
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services
from notify_fixtures import store_document

CLIENT_ADDRESS = "testclient"
"""The peer address Litestar's test client presents."""


def with_request_id(token: str, request_id: str) -> dict[str, str]:
    return {**bearer(token), "X-Request-ID": request_id}


async def test_each_portal_action_is_audited_with_actor_account_document_and_request_id(
    client: AsyncTestClient[Any], services: Services, settings: Settings, ingest_key: str
) -> None:
    account = unique("acct")
    sub = unique("user")
    document_id = await ingest(client, ingest_key, account)
    token = portal_token(settings, account, sub=sub)
    calls = [
        ("get", "/v1/mailbox/documents", "mailbox.listed", None),
        ("get", f"/v1/mailbox/documents/{document_id}", "document.read", {"view": "detail"}),
        ("get", f"/v1/mailbox/documents/{document_id}/content", "document.downloaded", None),
        ("post", f"/v1/mailbox/documents/{document_id}/read", "document.read", {"marked": "read"}),
        (
            "post",
            f"/v1/mailbox/documents/{document_id}/archive",
            "document.archived",
            {"archived": True},
        ),
    ]
    request_ids = []
    for method, path, _, _ in calls:
        request_id = unique("req")
        request_ids.append(request_id)
        response = await client.request(method, path, headers=with_request_id(token, request_id))
        assert response.status_code == 200, response.text
    prefs_id = unique("req")
    response = await client.put(
        f"/v1/mailbox/accounts/{account}/preferences",
        json={"paperless": True, "email": "new@example.org"},
        headers=with_request_id(token, prefs_id),
    )
    assert response.status_code == 200, response.text

    entries = await audit_entries(services, {"actor_id": sub}, len(calls) + 1)
    assert len(entries) == len(calls) + 1
    by_request = {entry["request_id"]: entry for entry in entries}
    for (_, _, action, details), request_id in zip(calls, request_ids, strict=True):
        entry = by_request[request_id]
        assert entry["action"] == action
        # The role the caller acts in on the account (an `accounts` grant is `owner`); a list
        # over all the token's accounts has none.
        role = {} if action == "mailbox.listed" else {"role": "owner"}
        assert entry["actor"] == {"kind": "portal", "sub": sub, **role}
        assert entry["client"] == CLIENT_ADDRESS
        if action != "mailbox.listed":
            assert entry["account_id"] == account
            assert entry["document_id"] == document_id
        if details is not None:
            assert entry["details"] == details
    listed = by_request[request_ids[0]]
    assert listed["account_id"] is None  # no `account` filter: all the token's accounts
    assert listed["details"] == {"items": 1, "more": False}
    downloaded = by_request[request_ids[2]]
    assert downloaded["details"]["status"] == 200
    assert downloaded["details"]["length"] > 0

    changed = by_request[prefs_id]
    assert changed["action"] == "preferences.changed"
    assert changed["account_id"] == account
    assert changed["details"] == {
        "before": {"paperless": False, "email": None},
        "after": {"paperless": True, "email": "new@example.org"},
    }


async def test_failed_authentication_is_audited_without_the_credentials(
    client: AsyncTestClient[Any], services: Services
) -> None:
    secret = unique("not-a-real-token-secret")
    request_id = unique("req")
    response = await client.get(
        "/v1/mailbox/documents",
        headers={"Authorization": f"Bearer {secret}", "X-Request-ID": request_id},
    )
    assert response.status_code == 401
    [entry] = await audit_entries(services, {"request_id": request_id}, 1)
    assert entry["action"] == "auth.failed"
    assert entry["actor"] == {"kind": "anonymous"}
    assert entry["client"] == CLIENT_ADDRESS
    assert entry["details"]["path"] == "/v1/mailbox/documents"
    assert entry["details"]["reason"]
    assert secret not in json.dumps(entry, default=str)


async def test_other_accounts_document_is_a_404_and_leaves_no_read_entry(
    client: AsyncTestClient[Any], services: Services, settings: Settings, ingest_key: str
) -> None:
    owner, intruder = unique("acct"), unique("user")
    document_id = await ingest(client, ingest_key, owner)
    token = portal_token(settings, unique("acct"), sub=intruder)
    response = await client.get(f"/v1/mailbox/documents/{document_id}", headers=bearer(token))
    assert response.status_code == 404
    listed = await client.get("/v1/mailbox/documents", headers=bearer(token))
    assert listed.status_code == 200
    # The list entry proves the intruder's entries were flushed; no read entry came before it.
    entries = await audit_entries(services, {"actor_id": intruder}, 1)
    assert [entry["action"] for entry in entries] == ["mailbox.listed"]


async def test_admin_resend_is_audited_with_the_key_as_actor(
    client: AsyncTestClient[Any], services: Services, admin_key: str, paperless_account: str
) -> None:
    doc = await store_document(services, paperless_account, notify=False)
    response = await client.post(
        f"/v1/admin/notifications/{doc['_id']}/resend?channel=realtime", headers=bearer(admin_key)
    )
    assert response.status_code == 202, response.text
    [entry] = await audit_entries(
        services, {"action": "notification.resent", "document_id": doc["_id"]}, 1
    )
    assert entry["actor"]["kind"] == "key"
    assert entry["actor"]["source"] == "test-admin"
    assert entry["actor_id"] == entry["actor"]["key_id"]
    assert entry["details"]["channel"] == "realtime"


async def test_cli_key_and_resend_commands_are_audited_as_the_operator(
    services: Services, paperless_account: str
) -> None:
    source = unique("audit-src")
    created = cli("keys", "create", "--source", source)
    key_id = created.stdout.strip().split("_")[1]
    cli("keys", "revoke", key_id)
    [made] = await audit_entries(services, {"action": "key.created", "details.key_id": key_id}, 1)
    assert made["actor"] == {"kind": "operator"}
    assert made["details"]["source"] == source
    assert made["details"]["scopes"] == ["ingest"]
    assert created.stdout.strip() not in json.dumps(made, default=str)
    [revoked] = await audit_entries(
        services, {"action": "key.revoked", "details.key_id": key_id}, 1
    )
    assert revoked["actor"] == {"kind": "operator"}

    doc = await store_document(services, paperless_account, notify=False)
    cli("notifications", "resend", doc["_id"], "--channel", "realtime", "--by", "ops-jane")
    [resent] = await audit_entries(
        services, {"action": "notification.resent", "document_id": doc["_id"]}, 1
    )
    assert resent["actor"] == {"kind": "operator"}
    assert resent["details"]["by"] == "ops-jane"


async def test_support_reads_are_audited_with_the_support_role(
    client: AsyncTestClient[Any], services: Services, settings: Settings, ingest_key: str
) -> None:
    customer, agent = unique("acct"), unique("agent")
    document_id = await ingest(client, ingest_key, customer)
    token = mint_token(settings.auth, agent, [], ttl_s=600, extra_claims={"roles": ["support"]})
    listed = await client.get(
        "/v1/mailbox/documents", params={"account": customer}, headers=bearer(token)
    )
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [document_id]
    for path in (
        f"/v1/mailbox/documents/{document_id}",
        f"/v1/mailbox/documents/{document_id}/content",
    ):
        assert (await client.get(path, headers=bearer(token))).status_code == 200
    entries = await audit_entries(services, {"actor_id": agent}, 3)
    assert [e["action"] for e in entries] == [
        "mailbox.listed",
        "document.read",
        "document.downloaded",
    ]
    for entry in entries:
        assert entry["actor"] == {"kind": "portal", "sub": agent, "role": "support"}
        assert entry["account_id"] == customer
