"""Print fallback, delivery and read receipts, bounces and acknowledgement, on the real stack.

A real worker process delivers through the stack's SMTP capture, which refuses `refuse-*`
recipients with 550 (devstack/smtp_capture.py); the bounce API and the portal run in-process
over real MongoDB; the acknowledgement pass runs as the operator's CLI. Every test looks at
what the document's sender is told: the events in `sender_events`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo import MongoClient
from pymongo.collection import Collection

from app_fixtures import cli, ingested_id, invoice_metadata, post_document, unique
from audit_fixtures import audit_entries
from mailbox_fixtures import bearer, letter_metadata, portal_token
from mailbox_service.clock import utcnow
from mailbox_service.mail.email import message_id
from mailbox_service.notifications.worker import email_outcomes
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import connect_blocking, documents_collection
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services
from notify_fixtures import (
    Harness,
    WorkerProcess,
    eventually,
    make_pending,
    pending_email,
    store_document,
    with_smtp_port,
)

ISOLATED_DB = "mailbox_print_fallback_tests"
BOUNCES = "/v1/admin/bounces"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def events_of(services: Services, document_id: str) -> list[Doc]:
    found = services.database.sender_events.find({"document_id": document_id}).sort("_id", 1)
    return await found.to_list()


def types_of(events: list[Doc]) -> list[str]:
    return [e["type"] for e in events]


async def wait_events(
    services: Services, document_id: str, wanted: set[str], within: float = 30
) -> list[Doc]:
    return await eventually(
        lambda: events_of(services, document_id),
        lambda events: wanted <= set(types_of(events)),
        within=within,
        what=f"events {sorted(wanted)} for {document_id}",
    )


async def account_with(services: Services, email: str, *, paperless: bool = True) -> str:
    account_id = unique("acct")
    await services.accounts.update(
        account_id, by="test", paperless=paperless, email=email, locale="en"
    )
    return account_id


# -- the worker: relay refusal, delivery -----------------------------------------------------


async def test_relay_refusing_the_recipient_turns_the_delivery_into_print(
    client: AsyncTestClient[Any],
    ingest_key: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    address = f"refuse-{unique('ann')}@example.org"
    account = await account_with(services, address)
    response = await post_document(client, ingest_key, invoice_metadata(account))
    assert response.status_code == 201, response.text
    document_id = str(response.json()["id"])
    # Stored as digital: the ingest answer says so (the worker is already at work on the
    # document, and its refusal may turn the stored mode into print before we could read it).
    assert response.json()["delivery"] == "digital"

    events = await wait_events(
        services, document_id, {"document.delivery_failed", "document.print_required"}
    )
    assert types_of(events) == ["document.delivery_failed", "document.print_required"]
    failed, printed = events
    assert failed["data"]["cause"] == "relay_refused"
    assert "550" in failed["data"]["reason"]
    assert printed["data"]["cause"] == "relay_refused"
    for event in events:
        assert address not in str(event["data"]), "the sender never learns the customer's address"
        assert "<recipient>" in event["data"]["reason"]
        assert event["source"] == "test-ingest"

    doc = await services.documents.record(document_id)
    assert doc is not None
    email = doc["notifications"]["email"]
    assert email["status"] == "failed"
    assert email["attempts"] == 1, "a refusal is final: no retry cycle"
    assert address in email["error"], "operators see the relay's full answer"
    delivery = doc["delivery"]
    assert delivery["mode"] == "print"
    assert delivery["reason"] == printed["data"]["reason"]
    assert [(c["mode"], c["cause"]) for c in delivery["changes"]] == [("print", "relay_refused")]

    status = await client.get(f"/v1/documents/{document_id}", headers=auth(ingest_key))
    assert status.status_code == 200, status.text
    assert status.json()["delivery"]["mode"] == "print"
    assert "550" in status.json()["delivery"]["reason"]
    assert "550" in status.json()["channels"]["email"]["last_error"]
    assert address not in status.text


async def test_an_accepted_email_tells_the_sender_delivered(
    client: AsyncTestClient[Any],
    ingest_key: str,
    services: Services,
    paperless_account: str,
    worker: WorkerProcess,
) -> None:
    before = utcnow()
    document_id = await ingested_id(client, ingest_key, invoice_metadata(paperless_account))
    events = await wait_events(services, document_id, {"document.delivered"})
    await asyncio.sleep(0.5)  # a second event would be recorded by now
    events = await events_of(services, document_id)
    assert types_of(events) == ["document.delivered"]
    assert set(events[0]["data"]) == {"at"}
    at = dt.datetime.fromisoformat(events[0]["data"]["at"].replace("Z", "+00:00"))
    assert before - dt.timedelta(seconds=1) <= at <= utcnow()
    doc = await services.documents.record(document_id)
    assert doc is not None
    assert doc["delivery"]["mode"] == "digital"


# -- retries exhausted (in-process, own database: no worker's sweep sees it) ----------------


@pytest.fixture(scope="module")
def sync_mongo(settings: Settings) -> Iterator[MongoClient[Doc]]:
    client = connect_blocking(settings.mongo, pool_size=4)
    yield client
    client.drop_database(ISOLATED_DB)
    client.close()


@pytest.fixture(scope="module")
def documents(sync_mongo: MongoClient[Doc]) -> Collection[Doc]:
    return documents_collection(sync_mongo, ISOLATED_DB)


async def test_retries_exhausted_tell_the_sender_and_print(
    settings: Settings,
    services: Services,
    sync_mongo: MongoClient[Doc],
    documents: Collection[Doc],
    paperless_account: str,
) -> None:
    limited = with_smtp_port(settings, settings.smtp.port, max_attempts=2)
    isolated = msgspec.structs.replace(
        limited, mongo=msgspec.structs.replace(limited.mongo, database=ISOLATED_DB)
    )
    harness = Harness(isolated, documents)
    harness.deliverer.outcomes = email_outcomes(documents.database, harness.broker)
    address = f"defer-{unique('bob')}@example.org"
    document_id = await pending_email(services, documents, paperless_account, address)
    events = sync_mongo[ISOLATED_DB]["sender_events"]
    try:
        deliver = harness.deliverer.deliver_email
        assert await asyncio.to_thread(deliver, document_id) == "retry"
        assert await asyncio.to_thread(events.count_documents, {"document_id": document_id}) == 0
        await asyncio.sleep(0.3)  # the backoff (200 ms in the test settings)
        assert await asyncio.to_thread(deliver, document_id) == "failed"
    finally:
        harness.close()
    told = await asyncio.to_thread(
        lambda: list(events.find({"document_id": document_id}).sort("_id", 1))
    )
    assert [e["type"] for e in told] == ["document.delivery_failed", "document.print_required"]
    assert told[0]["data"]["cause"] == "notification_failed"
    assert "450" in told[0]["data"]["reason"]
    assert address not in str(told[0]["data"])
    doc = await asyncio.to_thread(documents.find_one, {"_id": document_id})
    assert doc is not None
    assert doc["delivery"]["mode"] == "print"
    assert doc["delivery"]["changes"][-1]["cause"] == "notification_failed"


# -- bounces ----------------------------------------------------------------------------------


async def sent_document(services: Services, settings: Settings, account: str) -> str:
    """A document whose email the relay accepted (no worker will touch it: it is done)."""
    doc = await store_document(services, account, notify=False)
    document_id = str(doc["_id"])
    await make_pending(
        services,
        document_id,
        "email",
        status="sent",
        attempts=1,
        sent_at=utcnow(),
        message_id=message_id(document_id, settings.smtp.sender),
    )
    return document_id


async def bounce(
    client: AsyncTestClient[Any], key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    response = await client.post(BOUNCES, json=body, headers=auth(key))
    return response.status_code, response.json()


async def test_a_hard_bounce_by_document_id_prints_once(
    client: AsyncTestClient[Any],
    admin_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    document_id = await sent_document(services, settings, paperless_account)
    address = f"{paperless_account}@example.org"
    body = {
        "document_id": document_id,
        "recipient": address.upper(),  # addresses compare without case
        "reason": f"550 5.1.1 <{address}>: user unknown",
    }
    status, result = await bounce(client, admin_key, body)
    assert status == 200, result
    assert result == {
        "document_id": document_id,
        "permanent": True,
        "changed": True,
        "email_status": "failed",
        "delivery_mode": "print",
        "print_required": True,
    }
    events = await events_of(services, document_id)
    assert types_of(events) == ["document.delivery_failed", "document.print_required"]
    assert all(e["data"]["cause"] == "bounce" for e in events)
    assert all(address not in str(e["data"]) for e in events)
    doc = await services.documents.record(document_id)
    assert doc is not None
    assert doc["notifications"]["email"]["error"].startswith("bounced: 550")
    assert doc["delivery"]["changes"][-1]["cause"] == "bounce"

    # Reported again (the relay's DSN and the provider's webhook, say): nothing more happens.
    status, again = await bounce(client, admin_key, body)
    assert status == 200
    assert again["changed"] is False
    assert again["print_required"] is False
    assert types_of(await events_of(services, document_id)) == types_of(events)

    entries = await audit_entries(
        services, {"action": "bounce.reported", "document_id": document_id}, 2
    )
    assert [e["details"]["changed"] for e in entries] == [True, False]
    assert all(address not in str(e["details"]) for e in entries)


async def test_a_hard_bounce_by_message_id(
    client: AsyncTestClient[Any],
    admin_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    document_id = await sent_document(services, settings, paperless_account)
    mid = message_id(document_id, settings.smtp.sender)
    status, result = await bounce(
        client, admin_key, {"message_id": mid.strip("<>"), "reason": "mailbox disabled"}
    )
    assert status == 200, result
    assert result["document_id"] == document_id
    assert result["print_required"] is True
    events = await events_of(services, document_id)
    assert types_of(events) == ["document.delivery_failed", "document.print_required"]
    assert events[1]["data"]["reason"] == "mailbox disabled"


async def test_bounces_of_unknown_or_ambiguous_emails_are_refused(
    client: AsyncTestClient[Any],
    admin_key: str,
    ingest_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    document_id = await sent_document(services, settings, paperless_account)
    for body, expected, field in (
        ({"document_id": "no-such-document", "reason": "550"}, 404, None),
        ({"message_id": "<x.notification@elsewhere.example>", "reason": "550"}, 404, None),
        ({"message_id": "<not-ours@example.org>", "reason": "550"}, 404, None),
        ({"reason": "550"}, 422, "document_id"),
        (
            {"document_id": document_id, "message_id": "<a@b>", "reason": "550"},
            422,
            "document_id",
        ),
        ({"document_id": document_id, "reason": "   "}, 422, "reason"),
        ({"document_id": document_id, "reason": "550", "permanent": "yes"}, 422, "permanent"),
        ({"document_id": None, "message_id": "<a@b>", "reason": "550"}, 422, "document_id"),
        ({"document_id": document_id, "reason": "x" * 501}, 422, "reason"),
        (
            {"document_id": document_id, "reason": "550", "recipient": "someone@else.example"},
            409,
            "recipient",
        ),
    ):
        status, result = await bounce(client, admin_key, body)
        assert status == expected, (body, result)
        assert result["error"]["status"] == expected
        if field:
            assert result["error"]["field"] == field
    not_json = await client.post(BOUNCES, content=b"[1", headers=auth(admin_key))
    assert not_json.status_code == 400, not_json.text
    status, _ = await bounce(client, ingest_key, {"document_id": document_id, "reason": "550"})
    assert status == 403
    assert (
        await client.post(BOUNCES, json={"document_id": document_id, "reason": "550"})
    ).status_code == 401
    # None of that changed the document or told its sender anything.
    assert await events_of(services, document_id) == []
    doc = await services.documents.record(document_id)
    assert doc is not None
    assert doc["notifications"]["email"]["status"] == "sent"


async def test_a_bounce_for_a_printed_document_changes_nothing(
    client: AsyncTestClient[Any],
    admin_key: str,
    settings: Settings,
    services: Services,
) -> None:
    account = await account_with(services, f"{unique('paper')}@example.org", paperless=False)
    document_id = await sent_document(services, settings, account)
    doc = await services.documents.record(document_id)
    assert doc is not None
    assert doc["delivery"]["mode"] == "print"
    status, result = await bounce(client, admin_key, {"document_id": document_id, "reason": "550"})
    assert status == 200, result
    assert result["changed"] is False
    assert result["delivery_mode"] == "print"
    assert result["email_status"] == "sent"
    assert await events_of(services, document_id) == []


async def test_a_soft_bounce_is_recorded_and_prints_nothing(
    client: AsyncTestClient[Any],
    admin_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    document_id = await sent_document(services, settings, paperless_account)
    body = {"document_id": document_id, "reason": "452 4.2.2 mailbox full", "permanent": False}
    for expected in (1, 2):
        status, result = await bounce(client, admin_key, body)
        assert status == 200, result
        assert result["changed"] is False
        assert result["delivery_mode"] == "digital"
        assert result["email_status"] == "sent"
        doc = await services.documents.record(document_id)
        assert doc is not None
        assert doc["notifications"]["email"]["soft_bounces"] == expected
        assert doc["notifications"]["email"]["last_soft_bounce"]["reason"] == body["reason"]
    assert await events_of(services, document_id) == []


async def test_a_bounce_after_the_customer_read_the_document_prints_nothing(
    client: AsyncTestClient[Any],
    admin_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    document_id = await sent_document(services, settings, paperless_account)
    token = portal_token(settings, paperless_account)
    read = await client.post(f"/v1/mailbox/documents/{document_id}/read", headers=bearer(token))
    assert read.status_code == 200, read.text
    status, result = await bounce(client, admin_key, {"document_id": document_id, "reason": "550"})
    assert status == 200, result
    assert result["changed"] is True
    assert result["email_status"] == "failed"
    assert result["print_required"] is False
    assert result["delivery_mode"] == "digital"
    events = await events_of(services, document_id)
    assert types_of(events) == ["document.read", "document.delivery_failed"]


# -- read and download receipts -------------------------------------------------------------


async def test_first_read_and_first_download_tell_the_sender_once(
    client: AsyncTestClient[Any],
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    doc = await store_document(services, paperless_account, notify=False)
    document_id = str(doc["_id"])
    token = bearer(portal_token(settings, paperless_account, sub="reader-who-stays-unnamed"))
    path = f"/v1/mailbox/documents/{document_id}"
    assert (await client.get(path, headers=token)).status_code == 200  # a look is not a read
    assert await events_of(services, document_id) == []

    for method in ("post", "post", "delete", "post"):  # read, again, unread, read again
        response = await client.request(method.upper(), f"{path}/read", headers=token)
        assert response.status_code == 200, response.text
    for _ in range(2):
        response = await client.get(f"{path}/content", headers=token)
        assert response.status_code == 200, response.text

    events = await events_of(services, document_id)
    assert types_of(events) == ["document.read", "document.downloaded"]
    stored = await services.documents.record(document_id)
    assert stored is not None
    read, downloaded = events
    assert read["data"] == {"at": iso_ms(stored["first_read_at"])}
    assert downloaded["data"] == {"at": iso_ms(stored["first_downloaded_at"])}
    assert "reader-who-stays-unnamed" not in str(events)


async def mode_of(services: Services, document_id: str) -> str:
    doc = await services.documents.record(document_id)
    assert doc is not None
    return str(doc["delivery"]["mode"])


def iso_ms(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- acknowledgement --------------------------------------------------------------------------


async def test_unread_termination_confirmations_go_to_print_after_five_days(
    client: AsyncTestClient[Any],
    ingest_key: str,
    settings: Settings,
    services: Services,
    paperless_account: str,
) -> None:
    def letter(kind: str) -> dict[str, Any]:
        meta = letter_metadata(paperless_account, notify=False)
        meta["attributes"]["letter_kind"] = kind
        return meta

    due = await ingested_id(client, ingest_key, letter("termination_confirmation"))
    read = await ingested_id(client, ingest_key, letter("termination_confirmation"))
    welcome = await ingested_id(client, ingest_key, letter("welcome"))
    token = bearer(portal_token(settings, paperless_account))
    for method in ("POST", "DELETE"):  # read, then marked unread: it was read all the same
        response = await client.request(method, f"/v1/mailbox/documents/{read}/read", headers=token)
        assert response.status_code == 200
    stored = await services.documents.record(due)
    assert stored is not None
    created = stored["created_at"]

    def run(at: dt.datetime, *extra: str) -> str:
        return cli("acknowledgements", "run", "--at", iso_ms(at), *extra).stdout

    dry = await asyncio.to_thread(run, created + dt.timedelta(days=5), "--dry-run")
    assert "contract_letter: due " in dry
    assert "dry run: nothing changed" in dry
    early = await asyncio.to_thread(run, created + dt.timedelta(days=4, hours=23))
    assert "contract_letter:" in early
    for document_id in (due, read, welcome):
        assert await mode_of(services, document_id) == "digital", document_id

    output = await asyncio.to_thread(run, created + dt.timedelta(days=5))
    assert "turned into print:" in output
    doc = await services.documents.record(due)
    assert doc is not None
    assert doc["delivery"]["mode"] == "print"
    assert doc["delivery"]["reason"].startswith("not read within 5 days")
    assert doc["delivery"]["changes"][-1]["cause"] == "unacknowledged"
    events = await events_of(services, due)
    assert types_of(events) == ["document.print_required"]
    assert events[0]["data"]["cause"] == "unacknowledged"
    for document_id in (read, welcome):
        assert await mode_of(services, document_id) == "digital", document_id
        assert "document.print_required" not in types_of(await events_of(services, document_id))

    await asyncio.to_thread(run, created + dt.timedelta(days=6))  # a second pass: nothing new
    assert types_of(await events_of(services, due)) == ["document.print_required"]
