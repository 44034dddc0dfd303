"""When a document falls due, as stored for the reminder pass (senders/reminders.py).

A type that is reminded (`DocumentType.reminder_due`) gets `reminder: {"due_at": <midnight UTC
of the due date>}` at ingest; every other document `reminder: None`. The pass reads the due
window through the partial index on `reminder.due_at` (migration 0010) and writes the rest of
`reminder` (status, attempts, sent time, Message-ID) as it goes. The stored value is the due
date, not the reminder date, so changing MAILBOX_REMINDER_DAYS_BEFORE_DUE needs no rewrite.
Documents stored before reminders existed get theirs from `backfill_due` (migration 0012,
`mailbox-service reminders backfill`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec

from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.reminders import ReminderStore


def due_at(day: dt.date) -> dt.datetime:
    """A date as MongoDB stores it (there is no date type): midnight UTC."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def initial_reminder(doctype: DocumentType, attributes: Any) -> Doc | None:
    """The `reminder` field of a new document (validated attributes)."""
    day = doctype.reminder_due(attributes)
    return None if day is None else {"due_at": due_at(day)}


@dataclass
class BackfillReport:
    dated: int = 0
    """Documents that got their `reminder.due_at` (due today or later)."""
    past: int = 0
    """Documents already past their due date: left without one, they will never be reminded."""
    invalid: int = 0
    """Documents whose attributes no longer validate against their type."""


async def backfill_due(
    store: ReminderStore,
    registry: DocumentTypeRegistry,
    today: dt.date,
    *,
    batch: int = 1000,
) -> BackfillReport:
    """Give documents stored without `reminder` (before reminders existed, or by an older API
    during an upgrade) their due date. Reads every document of each reminded type that has
    no `reminder` field once; writes only those due today or later. Safe to repeat."""
    report = BackfillReport()
    for doctype in registry:
        if type(doctype).reminder_due is DocumentType.reminder_due:
            continue
        writes: list[tuple[str, dt.datetime]] = []
        async for doc in store.without_due(doctype.name, batch):
            try:
                day = doctype.reminder_due(doctype.validate(dict(doc.get("attributes") or {})))
            except (msgspec.ValidationError, ValueError, TypeError):
                report.invalid += 1
                continue
            if day is None or day < today:
                report.past += 1
                continue
            writes.append((doc["_id"], due_at(day)))
            if len(writes) >= batch:
                report.dated += await store.set_due(writes)
                writes = []
        report.dated += await store.set_due(writes)
    return report
