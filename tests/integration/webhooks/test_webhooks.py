"""Webhooks end to end on the real stack: a real worker process delivers sender events to real
HTTP receivers in this process, which check every signature themselves (webhook_fixtures.py).

The worker runs with short backoffs (a quarter second doubling to two seconds, 40 attempts:
about 76 s before a delivery fails for good) so that "down for a minute" needs a minute, not
the hours of the production schedule; everything else is as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bson import ObjectId
from litestar.testing import AsyncTestClient

from app_fixtures import cli, invoice_metadata, post_document, sample_pdf, unique
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.senders.event_log import enqueue_dispatch
from mailbox_service.senders.events import new_event
from mailbox_service.wiring.services import Services
from notify_fixtures import Maildir, WorkerProcess, eventually, wait_mail
from webhook_fixtures import Receiver, verify_signature

WEBHOOK_ENV = {
    "MAILBOX_WEBHOOK_MIN_BACKOFF_S": "0.25",
    "MAILBOX_WEBHOOK_MAX_BACKOFF_S": "2",
    "MAILBOX_WEBHOOK_MAX_ATTEMPTS": "40",
    "MAILBOX_WEBHOOK_TIMEOUT_S": "15",
    "MAILBOX_WEBHOOK_THREADS": "2",
    "MAILBOX_WEBHOOK_SWEEP_INTERVAL_S": "1",
    "MAILBOX_WEBHOOK_SWEEP_GRACE_S": "3",
}


@pytest.fixture(scope="module")
def webhook_worker(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(tmp_path_factory.mktemp("webhooks"), extra_env=WEBHOOK_ENV).start()
    yield process
    process.stop()


def admin(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def ingest(
    services: Services, source: str, account: str, *, notify: bool = False
) -> dict[str, Any]:
    pdf = sample_pdf()
    incoming = IncomingFile(
        data=io.BytesIO(pdf),
        filename="invoice.pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        content_type="application/pdf",
    )
    outcome = await services.ingest.accept(
        convert_metadata(invoice_metadata(account)), incoming, source=source, notify=notify
    )
    return outcome.document


async def create_endpoint(
    client: AsyncTestClient[Any], key: str, source: str, url: str, events: list[str]
) -> dict[str, Any]:
    answer = await client.post(
        "/v1/admin/webhooks",
        json={"source": source, "url": url, "events": events},
        headers=admin(key),
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def received(receiver: Receiver, count: int, within: float = 30) -> list[Any]:
    async def probe() -> list[Any]:
        return list(receiver.received)

    return await eventually(
        probe, lambda found: len(found) >= count, within=within, what=f"{count} webhooks"
    )


async def delivery(services: Services, delivery_id: str) -> dict[str, Any]:
    found = await services.database.webhook_deliveries.find_one({"_id": delivery_id})
    assert found is not None, delivery_id
    return found


async def test_bad_endpoints_are_refused_naming_the_field(
    client: AsyncTestClient[Any], admin_key: str, ingest_key: str
) -> None:
    source = unique("src")
    long_url = "https://example.org/" + "a" * 2100
    for url, why in (
        ("ftp://example.org/hook", "http:// or https://"),
        (long_url, "longer than 2048 bytes"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1%25eth0]/", "link-local"),
        ("http://metadata.google.internal/", "metadata"),
        ("http://0.0.0.0:9000/", "unspecified"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ):
        answer = await client.post(
            "/v1/admin/webhooks",
            json={"source": source, "url": url, "events": ["*"]},
            headers=admin(admin_key),
        )
        assert answer.status_code == 422, (url, answer.text)
        error = answer.json()["error"]
        assert error["field"] == "url"
        assert why in error["message"], (url, error)
    unknown = await client.post(
        "/v1/admin/webhooks",
        json={"source": source, "url": "http://127.0.0.1:9/", "events": ["document.eaten"]},
        headers=admin(admin_key),
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "events"
    not_admin = await client.post(
        "/v1/admin/webhooks",
        json={"source": source, "url": "http://127.0.0.1:9/", "events": ["*"]},
        headers=admin(ingest_key),
    )
    assert not_admin.status_code == 403
    anonymous = await client.get("/v1/admin/webhooks")
    assert anonymous.status_code == 401
    # Nothing was stored by any of them.
    listed = await client.get(f"/v1/admin/webhooks?source={source}", headers=admin(admin_key))
    assert listed.json() == {"items": []}


async def test_events_reach_only_their_own_sources_endpoints_signed(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    first, second = Receiver().up(), Receiver().up()
    try:
        source_a, source_b = unique("srcA"), unique("srcB")
        a = await create_endpoint(client, admin_key, source_a, first.url, ["*"])
        b = await create_endpoint(client, admin_key, source_b, second.url, ["document.read"])
        listed = await client.get("/v1/admin/webhooks", headers=admin(admin_key))
        mine = [e for e in listed.json()["items"] if e["id"] in (a["id"], b["id"])]
        assert len(mine) == 2
        assert all("secret" not in e for e in mine)

        doc_a = await ingest(services, source_a, paperless_account)
        doc_b = await ingest(services, source_b, paperless_account)
        events = services.sender_events
        read_a = await events.record(doc_a, "document.read", {"at": "2026-11-30T12:00:00Z"})
        printed_a = await events.record(doc_a, "document.print_required", {"reason": "bounced"})
        read_b = await events.record(doc_b, "document.read", {"at": "2026-11-30T12:00:01Z"})
        await events.record(doc_b, "document.delivered")  # B did not subscribe to this type

        got_a = await received(first, 2)
        got_b = await received(second, 1)
        await asyncio.sleep(1.5)  # anything misrouted or unsubscribed would arrive by now
        assert len(first.received) == 2
        assert len(second.received) == 1

        for secret, got in ((a["secret"], got_a), (b["secret"], got_b)):
            for request in got:
                verify_signature(secret, request)
                assert request.headers["content-type"] == "application/json"
        with pytest.raises(AssertionError, match="no valid signature"):
            verify_signature(b["secret"], got_a[0])  # another endpoint's secret does not fit

        bodies_a = {r.json()["id"]: r.json() for r in got_a}
        assert set(bodies_a) == {read_a, printed_a}
        printed = bodies_a[printed_a]
        assert printed["type"] == "document.print_required"
        assert printed["data"]["document_id"] == str(doc_a["_id"])
        assert printed["data"]["source_ref"] == doc_a["source_ref"]
        assert printed["data"]["reason"] == "bounced"
        assert printed["timestamp"].endswith("Z")
        only_b = got_b[0].json()
        assert (only_b["id"], only_b["data"]["document_id"]) == (read_b, str(doc_b["_id"]))

        # The webhook-id is the stored delivery, now delivered, one per (event, endpoint).
        # The dispatch job stores each delivery with its outcome only after the receiver has
        # answered (its first attempt comes before the insert): wait for the records.
        async def stored_deliveries() -> list[dict[str, Any] | None]:
            return [
                await services.database.webhook_deliveries.find_one({"_id": request.webhook_id})
                for request in (*got_a, *got_b)
            ]

        recorded = await eventually(
            stored_deliveries,
            lambda found: all(d is not None and d["status"] != "sending" for d in found),
            within=15,
            what="every delivery stored with its outcome",
        )
        for stored in recorded:
            assert stored is not None
            assert stored["status"] == "delivered"
            assert stored["endpoint_id"] in (a["id"], b["id"])
            assert stored["log"][-1]["status_code"] == 204
        deliveries = await client.get(
            f"/v1/admin/webhooks/{a['id']}/deliveries", headers=admin(admin_key)
        )
        assert {d["id"] for d in deliveries.json()["items"]} == set(first.ids())

        revoked = await client.post(
            f"/v1/admin/webhooks/{b['id']}/revoke", headers=admin(admin_key)
        )
        assert revoked.status_code == 200
        assert revoked.json()["state"] == "disabled"
        assert revoked.json()["disabled_reason"].startswith("revoked by admin key ")
        await events.record(doc_b, "document.read")
        await asyncio.sleep(1.5)
        assert len(second.received) == 1  # a revoked endpoint gets nothing more
    finally:
        first.down()
        second.down()


async def test_a_receiver_that_was_down_gets_every_event_with_unchanged_ids(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    receiver = Receiver()  # not listening: connections are refused
    down_since = time.monotonic()
    source = unique("src")
    endpoint = await create_endpoint(client, admin_key, source, receiver.url, ["*"])
    document = await ingest(services, source, paperless_account)
    recorded = [
        await services.sender_events.record(document, "document.read"),
        await services.sender_events.record(document, "document.downloaded"),
        await services.sender_events.record(
            document, "document.status_changed", {"status": "paid"}
        ),
    ]
    ids_of = services.database.webhook_deliveries

    async def failing() -> list[dict[str, Any]]:
        return await ids_of.find({"endpoint_id": endpoint["id"]}).to_list()

    # Down for real: every delivery has failed attempts with the refusal on record.
    failed = await eventually(
        failing,
        lambda found: len(found) == 3 and all(d["attempts"] >= 3 for d in found),
        within=30,
        what="three deliveries with failed attempts",
    )
    ids_while_down = {d["_id"] for d in failed}
    assert all(d["status"] in ("pending", "sending") for d in failed)
    assert all("ConnectionRefusedError" in (d["log"][0]["error"] or "") for d in failed)
    # Down for a minute in all (an hour-long outage is the same with production backoffs).
    await asyncio.sleep(max(0.0, 60 - (time.monotonic() - down_since)))

    receiver.up()
    try:
        # At least once: a repeat (same webhook-id) is allowed, a missing or new id is not.
        async def arrived() -> list[Any]:
            return list(receiver.received)

        got = await eventually(
            arrived,
            lambda found: len({r.webhook_id for r in found}) >= 3,
            within=30,
            what="all three webhook-ids",
        )
        assert set(receiver.ids()) == ids_while_down  # the same webhook-id as before
        assert {r.json()["id"] for r in got} == set(recorded)
        for request in got:
            verify_signature(endpoint["secret"], request)

        # The courier records each outcome after the receiver has answered: wait for the records.
        async def recorded_outcomes() -> list[dict[str, Any]]:
            return [await delivery(services, delivery_id) for delivery_id in ids_while_down]

        stored_all = await eventually(
            recorded_outcomes,
            lambda found: all(d["status"] != "sending" for d in found),
            within=15,
            what="the three outcomes recorded",
        )
        for stored in stored_all:
            assert stored["status"] == "delivered"
            assert stored["attempts"] >= 4
            assert stored["log"][-1]["status_code"] == 204
    finally:
        receiver.down()


async def test_410_disables_the_endpoint(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    receiver = Receiver(status=410).up()
    try:
        source = unique("src")
        endpoint = await create_endpoint(client, admin_key, source, receiver.url, ["*"])
        document = await ingest(services, source, paperless_account)
        await services.sender_events.record(document, "document.read")
        got = await received(receiver, 1)

        async def state() -> dict[str, Any] | None:
            return await services.database.webhook_endpoints.find_one({"_id": endpoint["id"]})

        disabled = await eventually(state, lambda e: e is not None and e["state"] == "disabled")
        assert disabled is not None
        assert "410" in disabled["disabled_reason"]

        # The courier disables the endpoint during the attempt, and stores the delivery with
        # its outcome only after that: wait for the delivery record.
        async def stored_delivery() -> dict[str, Any] | None:
            return await services.database.webhook_deliveries.find_one({"_id": got[0].webhook_id})

        gone = await eventually(
            stored_delivery,
            lambda d: d is not None and d["status"] != "sending",
            within=15,
            what="the 410 delivery stored with its outcome",
        )
        assert gone is not None
        assert (gone["status"], gone["last_status_code"], gone["attempts"]) == ("failed", 410, 1)

        # A disabled endpoint gets nothing more.
        await services.sender_events.record(document, "document.downloaded")
        await asyncio.sleep(2)
        assert len(receiver.received) == 1
        listed = await client.get(f"/v1/admin/webhooks?source={source}", headers=admin(admin_key))
        assert listed.json()["items"][0]["state"] == "disabled"
    finally:
        receiver.down()


async def test_a_lost_dispatch_is_swept_up(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    receiver = Receiver().up()
    try:
        source = unique("src")
        endpoint = await create_endpoint(client, admin_key, source, receiver.url, ["*"])
        document = await ingest(services, source, paperless_account)
        # An event whose dispatch job never reached Redis: stored, never enqueued, 10 s old.
        event = new_event(document, "document.read")
        stamp = int(time.time() - 10).to_bytes(4, "big")
        event["_id"] = ObjectId(stamp + secrets.token_bytes(8))
        await services.database.sender_events.insert_one(event)
        got = await received(receiver, 1, within=20)
        verify_signature(endpoint["secret"], got[0])
        assert got[0].json()["id"] == f"evt_{event['_id']}"

        # The courier marks the event after the receiver has answered: wait for the mark.
        async def marked() -> dict[str, Any] | None:
            return await services.database.sender_events.find_one({"_id": event["_id"]})

        stored = await eventually(marked, lambda e: e is not None and e["dispatched"] is True)
        assert stored is not None
        assert stored["dispatched"] is True
        # Dispatched once more (the sweep and a slow job both had it): nothing is sent again.
        assert enqueue_dispatch(services.broker, f"evt_{event['_id']}")
        await asyncio.sleep(2)
        assert len(receiver.received) == 1
        count = await services.database.webhook_deliveries.count_documents(
            {"event_id": f"evt_{event['_id']}"}
        )
        assert count == 1
    finally:
        receiver.down()


async def test_operators_see_failed_deliveries_and_resend_them_with_the_cli(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    receiver = Receiver(status=500).up()
    try:
        source = unique("src")
        created = cli(
            "webhooks",
            "create",
            "--source",
            source,
            "--url",
            receiver.url,
            "--events",
            "document.read,document.downloaded",
        )
        secret = created.stdout.strip()
        assert secret.startswith("whsec_")
        assert created.stdout == secret + "\n"
        assert "created: whep_" in created.stderr
        endpoint_id = created.stderr.split("created: ", 1)[1].split()[0]
        listed = cli("webhooks", "list", "--source", source)
        assert endpoint_id in listed.stdout
        assert "whsec_" not in listed.stdout + listed.stderr

        tested = cli("webhooks", "test", endpoint_id, check=False)
        assert tested.returncode == 1
        assert "HTTP 500" in tested.stdout
        verify_signature(secret, receiver.received[-1])
        assert receiver.received[-1].json()["type"] == "webhook.test"

        document = await ingest(services, source, paperless_account)
        await services.sender_events.record(document, "document.read")

        async def failed() -> list[dict[str, Any]]:
            return await services.database.webhook_deliveries.find(
                {"endpoint_id": endpoint_id, "status": "failed"}
            ).to_list()

        found = await eventually(failed, lambda f: len(f) == 1, within=150, what="failed")
        delivery_id = found[0]["_id"]
        assert found[0]["attempts"] == 40
        assert found[0]["last_status_code"] == 500
        assert len(found[0]["log"]) == 20  # the last 20 attempts are kept
        failed_lines = cli(
            "webhooks", "deliveries", "--status", "failed", "--endpoint", endpoint_id
        )
        assert delivery_id in failed_lines.stdout
        assert "HTTP 500" in failed_lines.stdout
        api_failed = await client.get(
            "/v1/admin/webhook-deliveries?status=failed&limit=500", headers=admin(admin_key)
        )
        assert delivery_id in {d["id"] for d in api_failed.json()["items"]}

        receiver.status = 200
        attempts_before = len(receiver.received)
        resent = cli("webhooks", "resend", delivery_id)
        assert f"resent: {delivery_id} pending" in resent.stdout
        await received(receiver, attempts_before + 1)
        again = receiver.received[-1]
        assert again.webhook_id == delivery_id  # the same id as the failed attempts
        verify_signature(secret, again)
        assert again.body == receiver.received[attempts_before - 1].body

        async def state() -> dict[str, Any]:
            return await delivery(services, delivery_id)

        done = await eventually(state, lambda d: d["status"] == "delivered")
        assert done["attempts"] == 1
        assert done["resent_by"] == "operator"
        # Resend through the admin API too: delivered once more, same id.
        answer = await client.post(
            f"/v1/admin/webhook-deliveries/{delivery_id}/resend", headers=admin(admin_key)
        )
        assert answer.status_code == 200
        assert answer.json()["status"] == "pending"
        await received(receiver, attempts_before + 2)
        assert receiver.received[-1].webhook_id == delivery_id
        missing = await client.post(
            "/v1/admin/webhook-deliveries/whmsg_nope/resend", headers=admin(admin_key)
        )
        assert missing.status_code == 404

        revoked = cli("webhooks", "revoke", endpoint_id)
        assert "disabled (revoked by operator)" in revoked.stdout
        # Every step above ran in a CLI process, which writes its audit entries before it exits.
        audit = await services.database.audit.find({"details.endpoint_id": endpoint_id}).to_list()
        actions = {entry["action"] for entry in audit}
        assert {"webhook.created", "webhook.tested", "webhook.resent", "webhook.revoked"} <= actions
    finally:
        receiver.down()


async def test_a_slow_receiver_does_not_delay_email(
    client: AsyncTestClient[Any],
    admin_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    slow = Receiver(delay_s=10).up()
    try:
        source = unique("src")
        await create_endpoint(client, admin_key, source, slow.url, ["document.read"])
        document = await ingest(services, source, paperless_account)
        for _ in range(4):  # twice the worker's webhook threads: all of them busy for 10 s
            await services.sender_events.record(document, "document.read")

        async def busy() -> int:
            return slow.in_flight

        await eventually(busy, lambda n: n == 2, within=10, what="both webhook threads busy")
        maildir = Maildir()
        started = time.monotonic()
        mailed = await ingest(services, unique("mail"), paperless_account, notify=True)
        await wait_mail(maildir, str(mailed["_id"]), within=9)
        email_seconds = time.monotonic() - started
        assert slow.in_flight == 2, "the webhook threads were still held by the slow receiver"
        assert email_seconds < 5, email_seconds
        print(f"email delivered in {email_seconds:.2f} s while 2 webhook attempts waited 10 s")
    finally:
        slow.down()


async def test_real_triggers_reach_the_endpoint(
    client: AsyncTestClient[Any],
    admin_key: str,
    ingest_key: str,
    services: Services,
    paperless_account: str,
    webhook_worker: WorkerProcess,
) -> None:
    """No hand-recorded events: the worker's email outcome and the sender's own status update
    are what the receiver hears about."""
    receiver = Receiver().up()
    key = await services.api_keys.authenticate(ingest_key)
    assert key is not None
    endpoint = await create_endpoint(
        client,
        admin_key,
        key.source,
        receiver.url,
        ["document.delivered", "document.status_changed"],
    )
    try:
        posted = await post_document(client, ingest_key, invoice_metadata(paperless_account))
        assert posted.status_code == 201, posted.text
        document_id = posted.json()["id"]

        async def about_it() -> list[dict[str, Any]]:
            return [
                r.json()
                for r in receiver.received
                if r.json()["data"]["document_id"] == document_id
            ]

        delivered = await eventually(
            about_it, lambda found: len(found) >= 1, within=30, what="document.delivered"
        )
        assert delivered[0]["type"] == "document.delivered"
        patched = await client.patch(
            f"/v1/documents/{document_id}",
            json={"status": "paid", "status_at": dt.datetime.now(dt.UTC).isoformat()},
            headers=admin(ingest_key),
        )
        assert patched.status_code == 200, patched.text
        both = await eventually(
            about_it,
            lambda found: any(e["type"] == "document.status_changed" for e in found),
            within=30,
            what="document.status_changed",
        )
        changed = [e for e in both if e["type"] == "document.status_changed"]
        assert changed[0]["data"]["status"] == "paid"
        # At least once: a repeat is allowed, but only ever as the same event.
        assert len({e["id"] for e in both if e["type"] == "document.delivered"}) == 1, both
        for request in receiver.received:
            verify_signature(endpoint["secret"], request)
    finally:
        await client.post(f"/v1/admin/webhooks/{endpoint['id']}/revoke", headers=admin(admin_key))
        receiver.down()
