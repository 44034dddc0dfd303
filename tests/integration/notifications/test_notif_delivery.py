"""The Deliverer and the outbox in-process, against the real MongoDB engine and SMTP.

Each test drives one delivery step by step and sees exactly what it records. The documents
are ingested normally (notifications off), then copied with one channel `pending` into a
database of this module's own, so no worker process (or its sweep) that may run elsewhere in
the session ever sees them. The queue is dramatiq's in-memory StubBroker, to look at what a
retry or the sweep enqueues.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import MongoClient
from pymongo.collection import Collection

from app_fixtures import free_port
from mailbox_service.clock import utcnow
from mailbox_service.notifications.sweep import OutboxSweep
from mailbox_service.paths import templates_dir
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import connect_blocking, documents_collection
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.outbox.states import Claim, claimed_state
from mailbox_service.wiring.services import Services
from notify_fixtures import Harness, Maildir, pending_email, with_smtp_port


class PickyRelay:
    """A relay that refuses `reject-*` for good (550) and `later-*` for now (451)."""

    def __init__(self) -> None:
        self.accepted: list[bytes] = []

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith("reject-"):
            return f"550 5.1.1 <{address}>: no such mailbox"
        if address.startswith("later-"):
            return "451 4.3.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.accepted.append(bytes(envelope.original_content or b""))
        return "250 OK"


@pytest.fixture(scope="module")
def picky_relay() -> Iterator[tuple[PickyRelay, int]]:
    handler = PickyRelay()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


ISOLATED_DB = "mailbox_notify_delivery_tests"


@pytest.fixture(scope="module")
def sync_mongo(settings: Settings) -> Iterator[MongoClient[Doc]]:
    client = connect_blocking(settings.mongo, pool_size=8)
    yield client
    client[ISOLATED_DB]["documents"].delete_many({})
    client.close()


@pytest.fixture(scope="module")
def documents(sync_mongo: MongoClient[Doc]) -> Collection[Doc]:
    return documents_collection(sync_mongo, ISOLATED_DB)


async def state_of(documents: Collection[Doc], document_id: str, channel: str) -> dict[str, Any]:
    doc = await asyncio.to_thread(documents.find_one, {"_id": document_id})
    assert doc is not None
    state: dict[str, Any] = doc["notifications"][channel]
    return state


async def set_state(
    documents: Collection[Doc], document_id: str, channel: str, **state: Any
) -> None:
    fresh = {
        "status": "pending",
        "attempts": 0,
        "error": None,
        "reason": None,
        "at": utcnow(),
        **state,
    }
    await asyncio.to_thread(
        documents.update_one, {"_id": document_id}, {"$set": {f"notifications.{channel}": fresh}}
    )


async def test_a_delivery_sends_one_email_and_records_it(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    maildir = Maildir()
    harness = Harness(settings, documents)
    document_id = await pending_email(services, documents, paperless_account)
    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "sent"
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "sent"
    assert state["attempts"] == 1
    assert state["error"] is None
    assert state["message_id"] == f"<{document_id}.notification@mailbox.invalid>"
    assert state["lease_until"] is None
    assert state["claim"] is None
    assert len(maildir.for_document(document_id)) == 1
    # Done is done: a duplicate job (sweep, retry) cannot claim it again.
    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "not_claimed"
    assert len(maildir.for_document(document_id)) == 1
    harness.close()


async def test_broken_template_fails_at_once_and_sends_nothing(
    settings: Settings,
    services: Services,
    documents: Collection[Doc],
    paperless_account: str,
    tmp_path: Path,
) -> None:
    root = tmp_path / "email"
    shutil.copytree(templates_dir() / "email", root)
    # The HTML part breaks after the subject and the text rendered fine: nothing may go out.
    html = root / "invoice" / "en" / "body.html.j2"
    html.write_text(html.read_text().replace("{{ due_date|date }}", "{{ due_date|date }"))
    maildir = Maildir()
    harness = Harness(settings, documents, templates=root)
    document_id = await pending_email(services, documents, paperless_account)

    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "failed"
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "failed"
    assert state["attempts"] == 1  # permanent: not retried
    assert "invoice/en/body.html.j2" in state["error"]
    assert "line" in state["error"]
    assert harness.enqueued("email.DQ") == []
    await asyncio.sleep(0.3)
    assert maildir.for_document(document_id) == []
    harness.close()


async def test_permanent_smtp_refusal_fails_without_retry(
    settings: Settings,
    services: Services,
    documents: Collection[Doc],
    paperless_account: str,
    picky_relay: tuple[PickyRelay, int],
) -> None:
    _, port = picky_relay
    harness = Harness(with_smtp_port(settings, port), documents)
    document_id = await pending_email(
        services, documents, paperless_account, "reject-me@example.org"
    )
    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "failed"
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "failed"
    assert state["attempts"] == 1
    assert "550" in state["error"]
    assert "no such mailbox" in state["error"]
    assert harness.enqueued("email.DQ") == []
    harness.close()


async def test_temporary_refusal_retries_with_backoff_then_fails(
    settings: Settings,
    services: Services,
    documents: Collection[Doc],
    paperless_account: str,
    picky_relay: tuple[PickyRelay, int],
) -> None:
    _, port = picky_relay
    harness = Harness(with_smtp_port(settings, port, max_attempts=2, min_backoff_ms=300), documents)
    document_id = await pending_email(
        services, documents, paperless_account, "later-please@example.org"
    )
    deliver = harness.deliverer.deliver_email

    before = utcnow()
    assert await asyncio.to_thread(deliver, document_id) == "retry"
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "pending"
    assert state["attempts"] == 1
    assert "451" in state["error"]
    assert before + dt.timedelta(milliseconds=250) <= state["next_at"]
    # The retry is a delayed job on the channel's delay queue, carrying only the id.
    (retry,) = harness.enqueued("email.DQ")
    assert retry.args == (document_id,)
    assert retry.actor_name == "deliver_email"
    assert retry.options["eta"] >= before.timestamp() * 1000 + 250

    # A job arriving before the backoff ends (a sweep duplicate) must not jump the queue.
    assert await asyncio.to_thread(deliver, document_id) == "not_claimed"
    await asyncio.sleep(0.35)
    assert await asyncio.to_thread(deliver, document_id) == "failed"  # attempt 2 of 2
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "failed"
    assert state["attempts"] == 2
    assert "451" in state["error"]
    harness.close()


async def test_no_address_is_skipped_with_the_reason(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    harness = Harness(settings, documents)
    document_id = await pending_email(services, documents, paperless_account)
    await asyncio.to_thread(
        documents.update_one, {"_id": document_id}, {"$set": {"delivery.email": None}}
    )
    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "skipped"
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "skipped"
    assert "no email address" in state["reason"]
    harness.close()


async def test_only_one_of_many_concurrent_claims_wins(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    harness = Harness(settings, documents)
    document_id = await pending_email(services, documents, paperless_account)
    start = threading.Barrier(8)
    claims: list[Any] = []

    def contend(n: int) -> None:
        start.wait()
        claims.append(harness.outbox.claim(document_id, "email", f"worker-{n}"))

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    state = await state_of(documents, document_id, "email")
    assert state == winners[0].state
    assert state["status"] == "sending"
    assert state["attempts"] == 1
    assert state["claim"] == winners[0].token
    harness.close()


async def test_an_expired_lease_is_taken_over_and_the_late_worker_records_nothing(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    harness = Harness(settings, documents, lease=dt.timedelta(milliseconds=300))
    document_id = await pending_email(services, documents, paperless_account)
    slow = harness.outbox.claim(document_id, "email", "slow-worker")
    assert slow is not None
    assert harness.outbox.claim(document_id, "email", "other") is None  # lease still held
    await asyncio.sleep(0.4)
    fast = harness.outbox.claim(document_id, "email", "fast-worker")
    assert fast is not None
    assert fast.attempts == 2
    assert harness.outbox.sent(fast) is True
    assert harness.outbox.failed(slow, "too late") is False  # cannot overwrite the outcome
    state = await state_of(documents, document_id, "email")
    assert state["status"] == "sent"
    assert state["error"] is None
    harness.close()


async def test_a_claim_from_a_stale_read_fails_however_late_it_comes(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    harness = Harness(settings, documents)
    document_id = await pending_email(services, documents, paperless_account)
    stale = await state_of(documents, document_id, "email")  # read, then stall ...
    assert await asyncio.to_thread(harness.deliverer.deliver_email, document_id) == "sent"
    # ... and try to claim it: the server checks the condition, not what the worker read.
    assert harness.outbox.claim(document_id, "email", "stale-worker") is None
    # Nor can an outcome be recorded for a claim the worker believes it holds from that read.
    late = claimed_state(stale, "tok", "stale-worker", utcnow(), dt.timedelta(seconds=30))
    doc = await asyncio.to_thread(documents.find_one, {"_id": document_id})
    assert doc is not None
    assert harness.outbox.failed(Claim(doc, "email", late), "too late") is False
    assert (await state_of(documents, document_id, "email"))["status"] == "sent"
    harness.close()


async def test_sweep_requeues_lost_jobs_once_per_grace_period(
    settings: Settings, services: Services, documents: Collection[Doc], paperless_account: str
) -> None:
    harness = Harness(with_smtp_port(settings, settings.smtp.port, max_attempts=3), documents)
    sweep = OutboxSweep(harness.outbox, harness.queue, grace=dt.timedelta(seconds=30))
    long_ago = utcnow() - dt.timedelta(minutes=5)

    async def document(**state: Any) -> str:
        document_id = await pending_email(services, documents, paperless_account)
        if state:
            await set_state(documents, document_id, "email", **state)
        return document_id

    lost_pending = await document(at=long_ago)  # Redis was down at ingestion
    fresh_pending = await document()  # within the grace period: its job may still come
    waiting_retry = await document(at=long_ago, next_at=utcnow() + dt.timedelta(minutes=5))
    crashed = await document(
        status="sending", attempts=1, version=1, claim="dead", worker="w1", lease_until=long_ago
    )
    exhausted = await document(
        status="sending", attempts=3, version=5, claim="dead", worker="w1", lease_until=long_ago
    )
    working = await document(
        status="sending",
        attempts=1,
        version=1,
        claim="live",
        worker="w2",
        lease_until=utcnow() + dt.timedelta(minutes=1),
    )

    report = await asyncio.to_thread(sweep.run_once)
    assert not report.broker_down
    requeued = {m.args[0] for m in harness.enqueued("email")}
    assert {lost_pending, crashed, exhausted} <= requeued
    assert not {fresh_pending, waiting_retry, working} & requeued

    # Marked: the next round leaves them alone until another grace period has passed.
    count = len(harness.enqueued("email"))
    await asyncio.to_thread(sweep.run_once)
    again = {m.args[0] for m in harness.enqueued("email")[count:]}
    assert not {lost_pending, crashed, exhausted} & again

    # The requeued jobs: delivered, taken over from the dead worker, or given up.
    deliver = harness.deliverer.deliver_email
    assert await asyncio.to_thread(deliver, lost_pending) == "sent"
    assert await asyncio.to_thread(deliver, crashed) == "sent"
    crashed_state = await state_of(documents, crashed, "email")
    assert crashed_state["attempts"] == 2
    assert await asyncio.to_thread(deliver, exhausted) == "failed"
    exhausted_state = await state_of(documents, exhausted, "email")
    assert "gave up after 3 attempts" in exhausted_state["error"]
    assert "w1" in exhausted_state["error"]
    assert await asyncio.to_thread(deliver, working) == "not_claimed"
    harness.close()
