"""Reminders: one email before a document falls due, to a customer who has not dealt with it.

A pass "as of" a time looks at the documents due within the next MAILBOX_REMINDER_DAYS_BEFORE_DUE
days (UTC dates, the due day itself included; `reminder.due_at`, set at ingest from the type's
`reminder_due`, see reminder_due.py) whose reminder has not been sent or given up, and sends
each the type's `reminder` email unless the document:
  - was read (`read_at` set; "mark unread" makes it eligible again) or archived,
  - is in one of its type's `settled_statuses` (an invoice `paid` or `cancelled`; a document
    without a status counts as open),
  - goes out on paper (`delivery.mode` print, from the start or by the print fallback),
  - has no address, or its notification email never went out (`notify: false`, backfilled,
    still pending, failed): a reminder only ever follows a notification;
  - belongs to an account that was erased since (its invoices are kept for the law, not for
    mail) or that has withdrawn its paperless consent (it asked for paper, not for email).
Documents due later are not read at all; documents past their due date have left the window.
Skipped documents are not marked: they are looked at again next pass while still in the window
(a status may be reopened, a document marked unread).

Never twice, also with passes running at once: the reminder is claimed with one
compare-and-set on the document (`reminder.status` absent or `retry`, or a `sending` claim
whose lease ran out → `sending` with a claim token and a lease), which re-checks the
conditions above, so a document read or paid a moment ago is not claimed either. The outcome
is a second compare-and-set on the claim token: `sent` {at, message_id, locale, relay_reply},
`retry` (a transient failure; the next pass tries again) or `failed` (a permanent failure, or
MAILBOX_REMINDER_MAX_ATTEMPTS passes tried). As for notifications, a process that stops after
the relay accepted the message and before it recorded `sent` leaves a claim that the next pass
takes over after its lease: that one case sends twice, with the same Message-ID
(`<document id>.reminder@<sender domain>`).

Stored: `reminder` {due_at, status, attempts, at, claim?, lease_until?, worker?, error?,
sent_at?, message_id?, locale?, relay_reply?}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.errors import MailboxError
from mailbox_service.log import get_logger
from mailbox_service.mail.email import (
    EmailRenderer,
    compose_wire,
    envelope_sender,
    view_of,
)
from mailbox_service.mail.failures import (
    DeliveryFailure,
    PermanentFailure,
    TransientFailure,
)
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.process import worker_name
from mailbox_service.senders.reminder_due import due_at
from mailbox_service.settings import Settings
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.reminders import ReminderStore

log = get_logger(__name__)

KIND = "reminder"
"""Email kind: templates `<type>/<locale>/reminder.{subject.txt,body.txt,body.html}.j2`."""


@dataclass
class ReminderReport:
    at: dt.datetime
    """The time the pass ran as of (`--at`)."""
    dry_run: bool
    sent: int = 0
    would_send: int = 0
    """Dry run: documents that would have been sent a reminder."""
    retry: int = 0
    """Transient failures: the next pass tries again."""
    failed: int = 0
    """Given up for good: a permanent failure, or the last allowed attempt failed."""
    not_claimed: int = 0
    """Held by another pass running at the same time, or changed since it was read."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Documents in the window that get no reminder, by reason."""
    seconds: float = 0.0

    def details(self) -> dict[str, Any]:
        """The counts, as audited and logged."""
        return {
            "at": self.at.isoformat(),
            "sent": self.sent,
            "retry": self.retry,
            "failed": self.failed,
            "not_claimed": self.not_claimed,
            "skipped": dict(self.skipped),
        }


def window(at: dt.datetime, days_before_due: int) -> list[dt.datetime]:
    """The due dates (as stored) a pass as of `at` reminds: today's UTC date and the next
    `days_before_due` days."""
    today = at.astimezone(dt.UTC).date()
    return [due_at(today + dt.timedelta(days=n)) for n in range(days_before_due + 1)]


def skip_reason(
    doc: Mapping[str, Any], doctype: DocumentType | None, account: Mapping[str, Any] | None
) -> str | None:
    """Why the document gets no reminder, or None when it gets one. `account`: the stored
    account (None when there is none)."""
    if doctype is None:
        return "unknown_type"
    if doc.get("read_at") is not None:
        return "read"
    if doc.get("archived_at") is not None:
        return "archived"
    status = doc.get("status")
    if status in doctype.settled_statuses:
        return f"status:{status}"
    delivery = doc.get("delivery") or {}
    if delivery.get("mode") != "digital":
        return "print"
    if not delivery.get("email"):
        return "no_email"
    if ((doc.get("notifications") or {}).get("email") or {}).get("status") != "sent":
        return "not_notified"
    if account is None or account.get("erased_at") is not None:
        return "account_erased"
    if not account.get("paperless"):
        return "paperless_withdrawn"
    return None


def claim_filter(doc: Mapping[str, Any], doctype: DocumentType, now: dt.datetime) -> Doc:
    """The claim's condition: still eligible (skip_reason's conditions that can change
    between the read and the claim) and not claimed by anyone else."""
    condition: Doc = {
        "_id": doc["_id"],
        "reminder.due_at": doc["reminder"]["due_at"],
        "read_at": None,
        "archived_at": None,
        "delivery.mode": "digital",
        "$or": [
            {"reminder.status": {"$exists": False}},
            {"reminder.status": "retry"},
            {"reminder.status": "sending", "reminder.lease_until": {"$lt": now}},
        ],
    }
    if doctype.settled_statuses:
        condition["status"] = {"$nin": sorted(doctype.settled_statuses)}
    return condition


@dataclass(frozen=True)
class Claim:
    document: Doc
    token: str
    attempts: int
    taken_over_from: str | None


class ReminderPass:
    """One pass over the due window; `run` is safe to call from several processes at once."""

    def __init__(
        self,
        store: ReminderStore,
        registry: DocumentTypeRegistry,
        renderer: EmailRenderer,
        smtp: SmtpSender,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.store = store
        self.registry = registry
        self.renderer = renderer
        self.smtp = smtp
        self.settings = settings
        self.clock = clock
        # A claim covers one send: a few SMTP round trips, each bounded by the timeout.
        self.claim_lease = dt.timedelta(seconds=max(60.0, 3 * settings.smtp.timeout_s))

    async def run(self, at: dt.datetime, *, dry_run: bool = False) -> ReminderReport:
        started = time.perf_counter()
        report = ReminderReport(at=at, dry_run=dry_run)
        # One thread sends every email of the pass, so it keeps one SMTP connection open.
        smtp_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reminder-smtp")
        try:
            for due in window(at, self.settings.reminder.days_before_due):
                async for page in self._due_on(due):
                    accounts = await self._accounts_of(page)
                    for doc in page:
                        account = accounts.get(doc["account_id"])
                        await self._one(doc, account, at, report, smtp_thread)
        finally:
            await asyncio.get_running_loop().run_in_executor(smtp_thread, self.smtp.close)
            smtp_thread.shutdown()
        report.seconds = time.perf_counter() - started
        log.info(
            "reminders.pass", dry_run=dry_run, seconds=round(report.seconds, 2), **report.details()
        )
        return report

    async def _due_on(self, due: dt.datetime) -> AsyncIterator[list[Doc]]:
        """Documents due on one day whose reminder is still open, in `_id` pages: an
        equality and a range on the index's two keys, so no page costs more than the first."""
        size = self.settings.reminder.batch_size
        after: str | None = None
        while True:
            page = await self.store.due_page(due, after, size)
            if page:
                yield page
            if len(page) < size:
                return
            after = page[-1]["_id"]

    async def _accounts_of(self, page: list[Doc]) -> dict[str, Doc]:
        """The accounts of a page's documents, by id: one read by `_id` per page."""
        return await self.store.accounts_of(sorted({doc["account_id"] for doc in page}))

    async def _one(
        self,
        doc: Doc,
        account: Doc | None,
        at: dt.datetime,
        report: ReminderReport,
        smtp_thread: ThreadPoolExecutor,
    ) -> None:
        doctype = self._doctype(doc["type"])
        reason = skip_reason(doc, doctype, account)
        if reason is not None:
            report.skipped[reason] += 1
            return
        assert doctype is not None
        if report.dry_run:
            report.would_send += 1
            return
        claim = await self._claim(doc, doctype)
        if claim is None:
            report.not_claimed += 1
            return
        bound = log.bind(document_id=doc["_id"], attempt=claim.attempts)
        if claim.taken_over_from:
            bound.warning("reminder.lease_taken_over", previous_worker=claim.taken_over_from)
        max_attempts = self.settings.reminder.max_attempts
        if claim.attempts > max_attempts:
            error = f"gave up after {max_attempts} attempts"
            await self._finish(claim, {"status": "failed", "error": error})
            report.failed += 1
            bound.warning("reminder.failed", error=error)
            return
        try:
            loop = asyncio.get_running_loop()
            sent = await loop.run_in_executor(smtp_thread, self._send, claim.document, doctype, at)
        except Exception as exc:
            failure = exc if isinstance(exc, DeliveryFailure) else None
            if failure is None:  # a bug or an unforeseen error: retried like a transient one
                bound.exception("reminder.unexpected_error")
                failure = TransientFailure(f"{type(exc).__name__}: {exc}")
            final = failure.permanent or claim.attempts >= max_attempts
            status = "failed" if final else "retry"
            await self._finish(claim, {"status": status, "error": failure.message})
            if final:
                report.failed += 1
            else:
                report.retry += 1
            bound.warning(f"reminder.{status}", error=failure.message, permanent=failure.permanent)
            return
        recorded = await self._finish(claim, {"status": "sent", "sent_at": self.clock(), **sent})
        report.sent += 1
        if recorded:
            bound.info("reminder.sent", message_id=sent["message_id"], locale=sent["locale"])
        else:
            bound.warning("reminder.lease_lost")

    def _doctype(self, name: str) -> DocumentType | None:
        try:
            return self.registry.get(name)
        except MailboxError:  # the type's plugin is no longer installed
            return None

    async def _claim(self, doc: Doc, doctype: DocumentType) -> Claim | None:
        now = self.clock()
        token = secrets.token_hex(8)
        before = await self.store.claim(
            claim_filter(doc, doctype, now),
            token=token,
            worker=worker_name(),
            now=now,
            lease_until=now + self.claim_lease,
        )
        if before is None:
            return None
        previous = before.get("reminder") or {}
        taken_over = previous.get("worker") if previous.get("status") == "sending" else None
        return Claim(before, token, int(previous.get("attempts") or 0) + 1, taken_over)

    def _send(self, doc: Doc, doctype: DocumentType, at: dt.datetime) -> dict[str, Any]:
        """Render, compose and hand over (on the SMTP thread); DeliveryFailure on refusal."""
        delivery = doc["delivery"]
        due = doc["reminder"]["due_at"].date()
        recipient_name = (doc.get("recipient") or {}).get("name")
        try:
            rendered = self.renderer.render(
                doctype,
                view_of(doc),
                locale=delivery.get("locale"),
                recipient_name=recipient_name,
                kind=KIND,
                extra={"due_on": due, "days_left": (due - at.astimezone(dt.UTC).date()).days},
            )
        except (KeyError, TypeError) as exc:  # a stored document missing what a view needs
            raise PermanentFailure(f"document: {type(exc).__name__}: {exc}") from exc
        smtp = self.settings.smtp
        message = compose_wire(
            rendered,
            sender=smtp.sender,
            recipient=delivery["email"],
            recipient_name=recipient_name,
            document_id=doc["_id"],
            account_id=doc["account_id"],
            portal_url=self.settings.portal_url,
            now=self.clock(),
            kind=KIND,
        )
        reply = self.smtp.send(
            message.data, envelope_from=envelope_sender(smtp.sender), recipient=delivery["email"]
        )
        return {"message_id": message.message_id, "locale": rendered.locale, "relay_reply": reply}

    async def _finish(self, claim: Claim, outcome: Mapping[str, Any]) -> bool:
        """Record the outcome if the claim is still ours (its lease was not taken over)."""
        changes = {**outcome, "at": self.clock()}
        return await self.store.finish(claim.document["_id"], claim.token, changes)
