"""What one reminder pass costs: reading the due window, and sending.

    uv run python bench/reminders.py                      # 10,000 due invoices, 2,000 to remind
    uv run python bench/reminders.py --due 50000 --eligible 5000

Against a real stack (profile test9, or MAILBOX_BENCH_PROFILE), in its own database
`reminders_bench`, with the stack's SMTP capture as the relay:

1. Seeds --due invoices due within the window of a pass (insert_many; their notification
   email `sent`), of which --eligible are open and unread and the rest read (what a pass meets
   most: customers who opened the invoice), plus --outside invoices due later (outside the
   window, so never read by the pass), over 5,000 accounts with paperless consent.
2. Runs a dry run (reads and classifies the window, sends nothing), the real pass (sends the
   eligible ones, one SMTP connection), then a second pass (everything left is skipped: the
   steady cost of every hourly pass while the documents stay in the window).

Each pass is ReminderPass.run, what `reminders run` and the worker run. Prints seconds and
documents per second; asserts only that every eligible document got exactly one reminder.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
import uuid

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.clock import utcnow
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.senders.periodic import build_renderer, reminder_pass
from mailbox_service.senders.reminder_due import due_at
from mailbox_service.senders.reminders import ReminderPass
from mailbox_service.settings import load_settings
from mailbox_service.storage.documents import source_key
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services

DATABASE = "reminders_bench"
BATCH = 1_000
ACCOUNTS = 5_000


def invoice(n: int, due: dt.date, *, read: bool) -> Doc:
    doc_id = uuid.uuid4().hex
    now = utcnow()
    return {
        "_id": doc_id,
        "type": "invoice",
        "source": "bench",
        "source_ref": f"bench-{doc_id}",
        "source_key": source_key("bench", f"bench-{doc_id}"),
        "account_id": f"bench-acct-{n % ACCOUNTS}",
        "title": f"Invoice INV-{n:08d}",
        "attributes": {
            "invoice_number": f"INV-{n:08d}",
            "total_amount": "84.20",
            "currency": "EUR",
            "due_date": due.isoformat(),
        },
        "summary": {},
        "recipient": None,
        "issued_at": now,
        "created_at": now,
        "delivery": {
            "mode": "digital",
            "reason": None,
            "email": f"bench-{n}@example.org",
            "locale": "de" if n % 2 else "en",
        },
        "read_at": now if read else None,
        "archived_at": None,
        "status": "open",
        "status_at": None,
        "notifications": {"email": {"status": "sent", "attempts": 1}},
        "reminder": {"due_at": due_at(due)},
        "retain_until": now + dt.timedelta(days=3650),
    }


async def seed(services: Services, today: dt.date, due: int, eligible: int, outside: int) -> float:
    started = time.perf_counter()
    documents = services.database.documents
    await services.database.accounts.insert_many(
        [{"_id": f"bench-acct-{n}", "paperless": True} for n in range(ACCOUNTS)]
    )
    batch: list[Doc] = []
    for n in range(due + outside):
        in_window = n < due
        day = today + dt.timedelta(days=n % 4 if in_window else 10 + n % 20)
        batch.append(invoice(n, day, read=in_window and n >= eligible))
        if len(batch) == BATCH:
            await documents.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await documents.insert_many(batch, ordered=False)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--due", type=int, default=10_000, help="Invoices in the window.")
    parser.add_argument("--eligible", type=int, default=2_000, help="Of those, to remind.")
    parser.add_argument("--outside", type=int, default=20_000, help="Invoices due later.")
    args = parser.parse_args()

    stack = Stack(StackConfig.for_profile(os.environ.get("MAILBOX_BENCH_PROFILE", "test9")))
    stack.up()
    os.environ.update(stack.env())
    os.environ.update({"MAILBOX_MONGO_DATABASE": DATABASE, "MAILBOX_LOG_FORMAT": "json"})
    settings = load_settings()
    services = Services.build(settings)
    await services.mongo.drop_database(DATABASE)
    await Migrator(
        MigrationContext(settings, services.database, services.blobs), migrations_dir()
    ).apply_pending()
    at = utcnow()
    print(
        f"reminder pass benchmark: {os.cpu_count()} cores, stack {stack.config.profile}, "
        f"{args.due:,} invoices due in the window ({args.eligible:,} to remind, the rest read), "
        f"{args.outside:,} due later"
    )
    seconds = await seed(services, at.date(), args.due, args.eligible, args.outside)
    print(f"  seeded in {seconds:.1f} s")
    renderer = build_renderer(settings)

    def new_pass() -> ReminderPass:
        return reminder_pass(services.reminders, settings, services.registry, renderer)

    for label, dry_run in (("dry run", True), ("pass that sends", False), ("next pass", False)):
        report = await new_pass().run(at, dry_run=dry_run)
        read = sum(report.skipped.values()) + report.sent + report.would_send + report.failed
        print(
            f"  {label:16} {report.seconds:6.2f} s  read {read:,} ({read / report.seconds:,.0f}/s)"
            f"  sent {report.sent:,}"
            + (f" ({report.sent / report.seconds:,.0f}/s)" if report.sent else "")
            + f"  would send {report.would_send:,}  skipped {sum(report.skipped.values()):,}"
            f"  failed {report.failed}"
        )
    sent = await services.database.documents.count_documents({"reminder.status": "sent"})
    assert sent == args.eligible, (sent, args.eligible)
    await services.mongo.drop_database(DATABASE)
    await services.close()


if __name__ == "__main__":
    asyncio.run(main())
