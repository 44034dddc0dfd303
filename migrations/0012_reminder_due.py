"""Reminders: the partial index of documents by due date, and the due dates of old documents.

The reminder pass (senders/reminders.py) reads, for each day of its window, the documents due
that day whose reminder is still open: an equality on `reminder.due_at` and a range on `_id`.
`reminder.due_at` is written at ingest from the type's `reminder_due` (an invoice's due date,
as midnight UTC), so the index is generic: every reminded type shares it, and a type added by a
plugin needs no index of its own. It is partial (only documents that have a due date): the
other types cost it nothing, and on DocumentDB every index a write touches is a cost.

Why a stored due date and not an index on `attributes.due_date`: the attribute's name and
format belong to each type, and an index per type's attribute would have to be added by every
type that wants reminders. The price is this backfill: documents stored before reminders
existed get their `reminder.due_at` here, but only those due today or later (one read of every
document of each reminded type, no write for the past ones, which would never be reminded).
Documents an older API process stores while this runs (a rolling upgrade) have none; run
`mailbox-service reminders backfill` once every API runs the new code. Safe to re-run.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import load_registry
from mailbox_service.log import get_logger
from mailbox_service.migrate import MigrationContext
from mailbox_service.senders.reminder_due import backfill_due
from mailbox_service.storage.reminders import ReminderStore

log = get_logger(__name__)

REMINDER_INDEX = IndexModel(
    [("reminder.due_at", ASCENDING), ("_id", ASCENDING)],
    name="reminder_due",
    partialFilterExpression={"reminder.due_at": {"$exists": True}},
)


async def up(ctx: MigrationContext) -> None:
    documents = ctx.database.documents
    await documents.create_indexes([REMINDER_INDEX])
    store = ReminderStore(ctx.database)
    report = await backfill_due(store, load_registry(), utcnow().date())
    log.info("reminders.backfilled", dated=report.dated, past=report.past, invalid=report.invalid)
