"""Reminders on the real stack: FerretDB, the SMTP capture, the HTTP API and the CLI.

Every test runs in a database of its own (a pass looks at every document due in its window,
and must neither send other tests' documents a reminder nor be counted wrong by them), and
each test uses due dates of its own, far in the future, so its pass counts only its documents.
A document gets its notification email the real way first (a Deliverer wired like the
worker's, against the same SMTP capture): a reminder only ever follows a notification.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from pymongo import MongoClient
from pymongo.collection import Collection

from app_fixtures import cli, free_port, invoice_metadata, post_document, unique
from explain_plans import Plan
from mailbox_fixtures import bearer, portal_token
from mailbox_service.asgi import create_app
from mailbox_service.clock import utcnow
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.senders.periodic import SenderPasses, build_renderer, reminder_pass
from mailbox_service.senders.reminder_due import due_at
from mailbox_service.senders.reminders import ReminderReport
from mailbox_service.settings import Settings
from mailbox_service.storage.blocking import connect_blocking, documents_collection
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.reminders import INDEX
from mailbox_service.wiring.services import Services
from notify_fixtures import Harness, Maildir, WorkerProcess, eventually, parts

PORTAL = "http://portal.test/portal"
_days = itertools.count(200, 10)


def far_due_date() -> dt.date:
    """A due date of this test's own: ten days from any other test's."""
    return utcnow().date() + dt.timedelta(days=next(_days))


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def morning(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
async def isolated(settings: Settings) -> AsyncIterator[Services]:
    database = unique("reminders").replace("-", "_")
    own = msgspec.structs.replace(
        settings, mongo=msgspec.structs.replace(settings.mongo, database=database)
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
    return {"MAILBOX_MONGO_DATABASE": isolated.settings.mongo.database}


@pytest.fixture(scope="module")
async def own_client(isolated: Services) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(isolated.settings), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def own_key(isolated: Services) -> str:
    _, secret = await isolated.api_keys.create("reminders", ["ingest"])
    return secret


@pytest.fixture(scope="module")
def sync_documents(isolated: Services) -> Iterator[Collection[Doc]]:
    client: MongoClient[Doc] = connect_blocking(isolated.settings.mongo, pool_size=4)
    yield documents_collection(client, isolated.settings.mongo.database)
    client.close()


@pytest.fixture(scope="module")
def harness(isolated: Services, sync_documents: Collection[Doc]) -> Iterator[Harness]:
    made = Harness(isolated.settings, sync_documents)
    yield made
    made.close()


class Invoices:
    """Accounts and invoices in the module's database, notified like the worker would."""

    def __init__(
        self, services: Services, client: AsyncTestClient[Any], key: str, harness: Harness
    ) -> None:
        self.services = services
        self.client = client
        self.key = key
        self.harness = harness

    async def account(self, *, paperless: bool = True, locale: str = "en") -> str:
        account_id = unique("acct")
        await self.services.accounts.update(
            account_id,
            by="test",
            paperless=paperless,
            email=f"{account_id}@example.org",
            locale=locale,
        )
        return account_id

    async def invoice(
        self,
        due: dt.date,
        *,
        account: str | None = None,
        notify: bool = True,
        amount: str = "84.20",
        **attributes: Any,
    ) -> str:
        account = account or await self.account()
        metadata = invoice_metadata(account, notify=notify)
        metadata["attributes"].update(
            {"due_date": due.isoformat(), "total_amount": amount, **attributes}
        )
        answer = await post_document(self.client, self.key, metadata)
        assert answer.status_code == 201, answer.text
        document_id = str(answer.json()["id"])
        stored = await self.services.documents.record(document_id)
        assert stored is not None
        if stored["notifications"]["email"]["status"] == "pending":
            outcome = await asyncio.to_thread(self.harness.deliverer.deliver_email, document_id)
            assert outcome == "sent", outcome
        return document_id

    async def reminder(self, document_id: str) -> dict[str, Any]:
        stored = await self.services.documents.record(document_id)
        assert stored is not None
        return dict(stored.get("reminder") or {})


@pytest.fixture
def invoices(
    isolated: Services, own_client: AsyncTestClient[Any], own_key: str, harness: Harness
) -> Invoices:
    return Invoices(isolated, own_client, own_key, harness)


def reminders_for(maildir: Maildir, document_id: str) -> list[EmailMessage]:
    return [m for m in maildir.for_document(document_id) if ".reminder@" in str(m["Message-ID"])]


def run_cli(env: dict[str, str], at: dt.datetime, *extra: str) -> str:
    return cli("reminders", "run", "--at", iso(at), *extra, env=env).stdout


def count(output: str, label: str) -> int:
    found = re.search(rf"^  {re.escape(label)}: (\d+)", output, re.MULTILINE)
    assert found, f"no {label!r} in:\n{output}"
    return int(found.group(1))


def concurrent_runs(env: dict[str, str], at: str, processes: int) -> list[str]:
    """`reminders run --at` in several processes started together; their outputs."""
    command = [sys.executable, "-m", "mailbox_service", "reminders", "run", "--at", at]
    runs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * processes, outputs
    return [out for out, _ in outputs]


async def one_pass(services: Services, at: dt.datetime, **settings: Any) -> ReminderReport:
    """What the CLI and the worker run, in-process (settings replaced where given)."""
    own = services.settings
    if settings:
        own = msgspec.structs.replace(own, **settings)
    renderer = build_renderer(own)
    return await reminder_pass(services.reminders, own, services.registry, renderer).run(at)


async def test_a_reminder_run_twice_sends_one_email(
    invoices: Invoices, isolated: Services, own_env: dict[str, str]
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    maildir = Maildir()
    first = run_cli(own_env, morning(due - dt.timedelta(days=3)))
    assert count(first, "sent") == 1, first
    again = run_cli(own_env, morning(due - dt.timedelta(days=2)))
    assert count(again, "sent") == 0, again
    assert len(reminders_for(maildir, document_id)) == 1
    state = await invoices.reminder(document_id)
    assert state["status"] == "sent"
    assert state["attempts"] == 1
    assert state["message_id"] == f"<{document_id}.reminder@mailbox.invalid>"
    assert state["due_at"] == due_at(due)
    assert "claim" not in state
    assert "lease_until" not in state
    entry = await isolated.database.audit.find_one(
        {
            "action": "reminders.sent",
            "details.by": "cli",
            "details.at": morning(due - dt.timedelta(days=3)).isoformat(),
        }
    )
    assert entry is not None
    assert entry["details"]["sent"] == 1


async def test_two_passes_at_once_send_each_reminder_once(
    invoices: Invoices, own_env: dict[str, str]
) -> None:
    due = far_due_date()
    ids = [await invoices.invoice(due) for _ in range(12)]
    maildir = Maildir()
    at = iso(morning(due - dt.timedelta(days=1)))
    outputs = await asyncio.to_thread(concurrent_runs, {**os.environ, **own_env}, at, 2)
    assert sum(count(out, "sent") for out in outputs) == 12, outputs
    for document_id in ids:
        assert len(reminders_for(maildir, document_id)) == 1, document_id
        assert (await invoices.reminder(document_id))["status"] == "sent"


async def test_two_passes_interleaved_in_one_process_claim_each_document_once(
    invoices: Invoices, isolated: Services
) -> None:
    """Both passes read the same page before either claims: every document is tried by both,
    and the compare-and-set lets exactly one of them send it."""
    due = far_due_date()
    ids = [await invoices.invoice(due) for _ in range(8)]
    maildir = Maildir()
    at = morning(due - dt.timedelta(days=2))
    first, second = await asyncio.gather(one_pass(isolated, at), one_pass(isolated, at))
    assert first.sent + second.sent == len(ids)
    assert first.not_claimed + second.not_claimed >= 1
    for document_id in ids:
        assert len(reminders_for(maildir, document_id)) == 1, document_id


async def test_no_reminder_when_read_settled_printed_archived_or_never_notified(
    invoices: Invoices,
    isolated: Services,
    own_client: AsyncTestClient[Any],
    own_key: str,
    own_env: dict[str, str],
) -> None:
    due = far_due_date()
    control = await invoices.invoice(due)
    read_account = await invoices.account()
    read = await invoices.invoice(due, account=read_account)
    archived_account = await invoices.account()
    archived = await invoices.invoice(due, account=archived_account)
    paid = await invoices.invoice(due)
    cancelled = await invoices.invoice(due)
    printed = await invoices.invoice(due, account=await invoices.account(paperless=False))
    silent = await invoices.invoice(due, notify=False)
    unread_again_account = await invoices.account()
    unread_again = await invoices.invoice(due, account=unread_again_account)
    withdrawn_account = await invoices.account()
    withdrawn = await invoices.invoice(due, account=withdrawn_account)
    erased_account = await invoices.account()
    erased = await invoices.invoice(due, account=erased_account)

    # The customer asks for paper from now on; another customer is erased (the invoice stays,
    # the law keeps it, but nobody may be emailed about it any more).
    await isolated.accounts.update(withdrawn_account, by="test", paperless=False)
    cli("accounts", "erase", erased_account, "--yes", env=own_env)
    assert await isolated.documents.record(erased) is not None

    settings = isolated.settings
    portal = bearer(portal_token(settings, read_account))
    assert (await own_client.post(f"/v1/mailbox/documents/{read}/read", headers=portal)).is_success
    portal = bearer(portal_token(settings, archived_account))
    answer = await own_client.post(f"/v1/mailbox/documents/{archived}/archive", headers=portal)
    assert answer.is_success, answer.text
    # Read, then marked unread: the customer says it still needs doing, so it is reminded.
    portal = bearer(portal_token(settings, unread_again_account))
    path = f"/v1/mailbox/documents/{unread_again}/read"
    assert (await own_client.post(path, headers=portal)).is_success
    assert (await own_client.delete(path, headers=portal)).is_success
    # The sender reports payment and cancellation through the status API.
    key = {"Authorization": f"Bearer {own_key}"}
    for document_id, status in ((paid, "paid"), (cancelled, "cancelled")):
        answer = await own_client.patch(
            f"/v1/documents/{document_id}",
            json={"status": status, "status_at": iso(utcnow())},
            headers=key,
        )
        assert answer.status_code == 200, answer.text
    maildir = Maildir()
    report = await one_pass(isolated, morning(due - dt.timedelta(days=3)))
    assert report.sent == 2
    assert dict(report.skipped) == {
        "read": 1,
        "archived": 1,
        "status:paid": 1,
        "status:cancelled": 1,
        "print": 1,
        "not_notified": 1,
        "paperless_withdrawn": 1,
        "account_erased": 1,
    }
    assert len(reminders_for(maildir, control)) == 1
    assert len(reminders_for(maildir, unread_again)) == 1
    for document_id in (read, archived, paid, cancelled, printed, silent, withdrawn, erased):
        assert reminders_for(maildir, document_id) == [], document_id
        assert "status" not in await invoices.reminder(document_id)


async def test_paid_just_before_the_claim_is_not_reminded(
    invoices: Invoices, isolated: Services, own_client: AsyncTestClient[Any], own_key: str
) -> None:
    """The claim re-checks the status: a PATCH between the pass's read and its claim wins."""
    due = far_due_date()
    document_id = await invoices.invoice(due)
    answer = await own_client.patch(
        f"/v1/documents/{document_id}",
        json={"status": "paid", "status_at": iso(utcnow())},
        headers={"Authorization": f"Bearer {own_key}"},
    )
    assert answer.status_code == 200, answer.text
    stale = await isolated.documents.record(document_id)
    assert stale is not None
    stale["status"] = "open"  # what the pass read before the PATCH landed
    renderer = build_renderer(isolated.settings)
    one = reminder_pass(isolated.reminders, isolated.settings, isolated.registry, renderer)
    doctype = isolated.registry.get("invoice")
    assert await one._claim(stale, doctype) is None
    maildir = Maildir()
    report = await one.run(morning(due))
    assert (report.sent, dict(report.skipped)) == (0, {"status:paid": 1})
    assert reminders_for(maildir, document_id) == []


async def test_not_sent_too_early_nor_after_the_due_date(
    invoices: Invoices, isolated: Services, own_env: dict[str, str]
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    maildir = Maildir()
    too_early = dt.datetime.combine(due - dt.timedelta(days=4), dt.time(23, 59), dt.UTC)
    output = run_cli(own_env, too_early)
    assert (count(output, "sent"), count(output, "skipped")) == (0, 0), output
    past_due = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(0, 0), dt.UTC)
    output = run_cli(own_env, past_due)
    assert (count(output, "sent"), count(output, "skipped")) == (0, 0), output
    assert reminders_for(maildir, document_id) == []
    assert await invoices.reminder(document_id) == {"due_at": due_at(due)}
    # The window opens at midnight UTC three days before and includes the due day itself.
    opens = dt.datetime.combine(due - dt.timedelta(days=3), dt.time(0, 0), dt.UTC)
    report = await one_pass(isolated, opens)
    assert report.sent == 1
    assert len(reminders_for(maildir, document_id)) == 1


async def test_days_before_due_comes_from_the_settings(
    invoices: Invoices, isolated: Services, own_env: dict[str, str]
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    five_before = morning(due - dt.timedelta(days=5))
    assert count(run_cli(own_env, five_before), "sent") == 0
    output = run_cli({**own_env, "MAILBOX_REMINDER_DAYS_BEFORE_DUE": "5"}, five_before)
    assert count(output, "sent") == 1, output
    assert (await invoices.reminder(document_id))["status"] == "sent"


async def test_dry_run_sends_nothing_and_changes_nothing(
    invoices: Invoices, own_env: dict[str, str]
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    await invoices.invoice(due, notify=False)
    maildir = Maildir()
    at = morning(due - dt.timedelta(days=2))
    output = run_cli(own_env, at, "--dry-run")
    assert count(output, "would send") == 1, output
    assert "not_notified 1" in output
    assert "dry run: nothing sent" in output
    assert reminders_for(maildir, document_id) == []
    assert await invoices.reminder(document_id) == {"due_at": due_at(due)}
    assert count(run_cli(own_env, at), "sent") == 1


async def test_reminder_email_content_in_the_customers_locale(
    invoices: Invoices, isolated: Services
) -> None:
    due = far_due_date()
    account = await invoices.account(locale="de")
    number = unique("INV")
    document_id = await invoices.invoice(
        due, account=account, amount="1284.5", invoice_number=number
    )
    maildir = Maildir()
    report = await one_pass(isolated, morning(due - dt.timedelta(days=3)))
    assert report.sent == 1
    [message] = reminders_for(maildir, document_id)
    german_date = f"{due:%d.%m.%Y}"
    assert message["Subject"] == (
        f"Erinnerung: Ihre Rechnung {number} (1.284,50 €) ist am {german_date} fällig"
    )
    assert message["To"] == f"{account}@example.org"
    assert message["Content-Language"] == "de"
    assert message["Message-ID"] == f"<{document_id}.reminder@mailbox.invalid>"
    text, html = parts(message)
    link = f"{PORTAL}/documents/{document_id}"
    assert "in 3 Tagen fällig" in text
    assert f"Fällig am: {german_date}" in text
    assert "1.284,50 €" in text
    assert f"Rechnung ansehen: {link}" in text
    assert f'href="{link}"' in html
    assert number in html
    state = await invoices.reminder(document_id)
    assert state["locale"] == "de"
    assert state["relay_reply"].startswith("250")


async def test_a_relay_that_is_down_is_retried_next_pass_then_given_up(
    invoices: Invoices, isolated: Services
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    down = msgspec.structs.replace(isolated.settings.smtp, port=free_port(), timeout_s=2)
    at = morning(due - dt.timedelta(days=3))
    first = await one_pass(isolated, at, smtp=down)
    assert (first.sent, first.retry, first.failed) == (0, 1, 0)
    state = await invoices.reminder(document_id)
    assert (state["status"], state["attempts"]) == ("retry", 1)
    assert "Connection refused" in state["error"] or "Errno" in state["error"]
    await one_pass(isolated, at, smtp=down)
    last = await one_pass(isolated, at, smtp=down)
    assert (last.retry, last.failed) == (0, 1)
    state = await invoices.reminder(document_id)
    assert (state["status"], state["attempts"]) == ("failed", 3)
    # Given up for good: a working relay later sends nothing.
    maildir = Maildir()
    report = await one_pass(isolated, at)
    assert report.sent == 0
    assert reminders_for(maildir, document_id) == []


async def test_a_crashed_pass_claim_is_taken_over_after_its_lease(
    invoices: Invoices, isolated: Services
) -> None:
    due = far_due_date()
    document_id = await invoices.invoice(due)
    # A pass claimed it and died before sending: its lease is still live, then expired.
    await isolated.database.documents.update_one(
        {"_id": document_id},
        {
            "$set": {
                "reminder.status": "sending",
                "reminder.claim": "dead",
                "reminder.worker": "host/1/gone",
                "reminder.attempts": 1,
                "reminder.lease_until": utcnow() + dt.timedelta(minutes=5),
            }
        },
    )
    maildir = Maildir()
    at = morning(due - dt.timedelta(days=1))
    held = await one_pass(isolated, at)
    assert (held.sent, held.not_claimed) == (0, 1)
    await isolated.database.documents.update_one(
        {"_id": document_id}, {"$set": {"reminder.lease_until": utcnow() - dt.timedelta(seconds=1)}}
    )
    taken = await one_pass(isolated, at)
    assert taken.sent == 1
    assert len(reminders_for(maildir, document_id)) == 1
    state = await invoices.reminder(document_id)
    assert (state["status"], state["attempts"]) == ("sent", 2)


async def test_worker_runs_the_pass_once_per_interval(
    invoices: Invoices, isolated: Services
) -> None:
    """What the worker's SenderPassesThread does every minute: run when due, then not."""
    due = utcnow().date() + dt.timedelta(days=2)  # the worker's pass runs as of now
    document_id = await invoices.invoice(due)
    await isolated.database.leases.delete_many({})
    hourly = msgspec.structs.replace(
        isolated.settings,
        reminder=msgspec.structs.replace(isolated.settings.reminder, interval_s=3600),
        acknowledgement=msgspec.structs.replace(isolated.settings.acknowledgement, interval_s=3600),
    )
    maildir = Maildir()
    passes = SenderPasses(hourly, isolated.registry, isolated.broker)
    assert await passes.run_due() == ["senders.reminders", "senders.acknowledgement"]
    assert len(reminders_for(maildir, document_id)) == 1
    # Another worker (or this one a minute later) finds nothing due.
    other = SenderPasses(hourly, isolated.registry, isolated.broker)
    assert await other.run_due() == []
    lease = await isolated.database.leases.find_one({"_id": "senders.reminders"})
    assert lease is not None
    assert lease["done_at"] <= utcnow()
    entry = await isolated.database.audit.find_one(
        {"action": "reminders.sent", "details.by": "worker"}
    )
    assert entry is not None
    assert entry["details"]["sent"] >= 1
    # Turned off: no pass at all.
    off = msgspec.structs.replace(
        hourly,
        reminder=msgspec.structs.replace(hourly.reminder, interval_s=0),
        acknowledgement=msgspec.structs.replace(hourly.acknowledgement, interval_s=0),
    )
    assert SenderPasses(off, isolated.registry, isolated.broker).passes == []


async def test_the_worker_process_sends_due_reminders(
    invoices: Invoices, isolated: Services, own_env: dict[str, str], tmp_path: Path
) -> None:
    due = utcnow().date() + dt.timedelta(days=1)
    document_id = await invoices.invoice(due)
    await isolated.database.leases.delete_many({})
    maildir = Maildir()
    worker = WorkerProcess(
        tmp_path, extra_env={**own_env, "MAILBOX_REMINDER_INTERVAL_S": "3600"}
    ).start()
    try:

        async def probe() -> list[EmailMessage]:
            return reminders_for(maildir, document_id)

        await eventually(probe, lambda found: len(found) == 1, within=30, what="the reminder")
    finally:
        worker.stop()
    assert '"event": "reminders.pass"' in worker.output()
    assert (await invoices.reminder(document_id))["status"] == "sent"


async def test_pages_read_the_partial_due_index(invoices: Invoices, isolated: Services) -> None:
    due = far_due_date()
    for _ in range(3):
        await invoices.invoice(due)
    explained = await isolated.database.db.command(
        "explain",
        {
            "find": "documents",
            "filter": {
                "reminder.due_at": due_at(due),
                "reminder.status": {"$nin": ["sent", "failed"]},
                "_id": {"$gt": ""},
            },
            "sort": {"reminder.due_at": 1, "_id": 1},
            "limit": 200,
            "singleBatch": True,
        },
        verbosity="queryPlanner",
    )
    plan = Plan.of(explained)
    assert plan.uses(INDEX), plan
    assert not plan.blocking_sort, plan


async def test_backfill_dates_old_documents_due_from_today(
    invoices: Invoices, isolated: Services, own_env: dict[str, str]
) -> None:
    future, past = far_due_date(), utcnow().date() - dt.timedelta(days=30)
    old_future = await invoices.invoice(future, notify=False)
    old_past = await invoices.invoice(past, notify=False)
    # As stored before reminders existed: no `reminder` field at all.
    await isolated.database.documents.update_many(
        {"_id": {"$in": [old_future, old_past]}}, {"$unset": {"reminder": ""}}
    )
    output = cli("reminders", "backfill", env=own_env).stdout
    assert "documents given a due date: 1" in output, output
    assert await invoices.reminder(old_future) == {"due_at": due_at(future)}
    assert await invoices.reminder(old_past) == {}
    again = cli("reminders", "backfill", env=own_env).stdout
    assert "documents given a due date: 0" in again, again
