"""End to end through a real `mailbox-service worker` process: POST → Redis → worker → SMTP
capture and Socket.IO.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import pytest
import socketio
from litestar.testing import AsyncTestClient

from app_fixtures import (
    LiveServer,
    ingested_id,
    invoice_metadata,
    post_document,
    sample_pdf,
    unique,
)
from mailbox_service.auth import mint_token
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services
from notify_fixtures import (
    Maildir,
    WorkerProcess,
    channel_state,
    parts,
    wait_mail,
    wait_status,
)

PORTAL = "http://portal.test/portal"  # MAILBOX_PORTAL_URL of the test env


async def test_posted_invoice_yields_exactly_one_email(
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    maildir = Maildir()
    document_id = await ingested_id(client, ingest_key, invoice_metadata(paperless_account))

    state = await wait_status(services, document_id, "email", "sent")
    assert state["attempts"] == 1
    assert state["error"] is None
    (message,) = await wait_mail(maildir, document_id)
    text, html = parts(message)
    for body in (text, html):
        assert "€84.20" in body  # the account's locale is en
        assert "15 Dec 2026" in body
        assert f"{PORTAL}/documents/{document_id}" in body
    assert "€84.20" in message["Subject"]
    assert message["To"] == f"{paperless_account}@example.org"
    assert message["Message-ID"] == f"<{document_id}.notification@mailbox.invalid>"
    # (.strip(): a long header is folded right after its colon; unfolding keeps the space)
    unsubscribe = f"<{PORTAL}/accounts/{paperless_account}/preferences>"
    assert message["List-Unsubscribe"].strip() == unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not any(p.get_content_type() == "application/pdf" for p in message.walk())
    await wait_status(services, document_id, "realtime", "sent")

    await asyncio.sleep(1.0)  # a duplicate would show up now (the test sweep runs every 1 s)
    assert len(maildir.for_document(document_id)) == 1


async def test_recipient_locale_and_address_win_over_the_account(
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    maildir = Maildir()
    meta = invoice_metadata(
        paperless_account,
        recipient={"email": "rechnung@example.de", "name": "Erika Mustermann", "locale": "de"},
    )
    document_id = await ingested_id(client, ingest_key, meta)
    (message,) = await wait_mail(maildir, document_id)
    text, html = parts(message)
    assert message["To"] == "Erika Mustermann <rechnung@example.de>"
    assert "84,20 €" in text
    assert "15.12.2026" in text
    assert "Guten Tag Erika Mustermann" in text
    assert "84,20 €" in html
    assert "15.12.2026" in html
    assert message["Content-Language"] == "de"


async def test_print_document_gets_no_email(
    client: AsyncTestClient[Any], ingest_key: str, services: Services, worker: WorkerProcess
) -> None:
    maildir = Maildir()
    account = unique("acct")
    await services.accounts.update(
        account, by="test", paperless=False, email=f"{account}@example.org"
    )
    document_id = await ingested_id(client, ingest_key, invoice_metadata(account))
    email_state = await channel_state(services, document_id, "email")
    assert email_state["status"] == "skipped"
    assert "print" in email_state["reason"]
    # The worker did handle the document (real time is not about consent to paperless) ...
    await wait_status(services, document_id, "realtime", "sent")
    await asyncio.sleep(0.5)
    # ... and sent no email.
    assert maildir.for_document(document_id) == []
    assert (await channel_state(services, document_id, "email"))["status"] == "skipped"


async def test_notify_false_skips_both_channels(
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    meta = invoice_metadata(paperless_account, notify=False)
    document_id = await ingested_id(client, ingest_key, meta)
    for channel in ("email", "realtime"):
        state = await channel_state(services, document_id, channel)
        assert state["status"] == "skipped"
        assert state["reason"] == "notify is false"


async def test_backfilled_document_gets_no_notification(
    services: Services, paperless_account: str, worker: WorkerProcess
) -> None:
    maildir = Maildir()
    pdf = sample_pdf()
    incoming = IncomingFile(
        data=io.BytesIO(pdf),
        filename="old.pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        content_type="application/pdf",
    )
    outcome = await services.ingest.accept(
        convert_metadata(invoice_metadata(paperless_account)),
        incoming,
        source="archive",
        origin="backfill",
        notify=False,
    )
    document_id = outcome.document["_id"]
    for channel in ("email", "realtime"):
        state = await channel_state(services, document_id, channel)
        assert state["status"] == "skipped"
        assert state["reason"] == "backfilled without --notify"
    await asyncio.sleep(1.0)
    assert maildir.for_document(document_id) == []


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.org\r\nBcc: everyone@example.org",
        "victim@example.org\nSubject: pwned",
        "victim@example.org\r\n",
        "Victim <victim@example.org>",
        "victim@example.org, other@example.org",
    ],
)
async def test_header_injection_address_is_refused_at_ingestion(
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    address: str,
) -> None:
    maildir = Maildir()
    meta = invoice_metadata(paperless_account, recipient={"email": address})
    response = await post_document(client, ingest_key, meta)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "recipient.email"
    assert await services.documents.find_by_source_ref("test-ingest", meta["source_ref"]) is None
    await asyncio.sleep(0.3)
    assert not any("victim@example.org" in str(m["X-Envelope-To"]) for m in maildir.messages())


async def test_resend_sends_the_same_message_again(
    client: AsyncTestClient[Any],
    ingest_key: str,
    admin_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    maildir = Maildir()
    document_id = await ingested_id(client, ingest_key, invoice_metadata(paperless_account))
    await wait_mail(maildir, document_id)
    await wait_status(services, document_id, "email", "sent")

    response = await client.post(
        f"/v1/admin/notifications/{document_id}/resend",
        params={"channel": "email"},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {
        "document_id": document_id,
        "channel": "email",
        "status": "pending",
        "enqueued": True,
    }
    first, second = await wait_mail(maildir, document_id, count=2)
    assert first["Message-ID"] == second["Message-ID"]  # recognisably the same notification
    state = await wait_status(services, document_id, "email", "sent")
    assert state["attempts"] == 1
    assert state["reason"].startswith("resent by admin key")


async def test_document_created_event_reaches_the_account_room(
    live_server: LiveServer,
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    settings: Settings,
    services: Services,
    worker: WorkerProcess,
) -> None:
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sio = socketio.AsyncClient(reconnection=False)

    @sio.on("document.created")
    async def on_created(data: dict[str, Any]) -> None:
        await received.put(data)

    token = mint_token(settings.auth, "portal-user", [paperless_account])
    await sio.connect(
        live_server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10
    )
    try:
        document_id = await ingested_id(client, ingest_key, invoice_metadata(paperless_account))
        event = await asyncio.wait_for(received.get(), timeout=20)
    finally:
        await sio.disconnect()
    assert event["id"] == document_id
    assert event["type"] == "invoice"
    assert event["account_id"] == paperless_account
    assert event["title"].startswith("Invoice INV-")
    assert event["summary"]["total_amount"] == "84.20"
    assert event["summary"]["due_date"] == "2026-12-15"
    assert event["issued_at"].endswith("Z")
    await wait_status(services, document_id, "realtime", "sent")
