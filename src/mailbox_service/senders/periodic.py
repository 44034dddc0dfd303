"""The worker's periodic sender passes: reminders, and the acknowledgement pass.

One thread (in the worker process that runs the sweeps) checks every minute which pass is due.
Each pass has its own run lease (storage/leases.py: `senders.reminders`,
`senders.acknowledgement`), so across every worker host a pass runs in one process at a time,
at most once per its interval (MAILBOX_REMINDER_INTERVAL_S, MAILBOX_ACKNOWLEDGEMENT_INTERVAL_S;
0 turns a pass off), and the schedule survives restarts. Both passes are safe to run twice or
at once anyway (each document is claimed by a compare-and-set); the lease only saves the work.
A run that changed something is audited (`reminders.sent`, `acknowledgement.printed`, with
`details.by: "worker"`), like the same run from the CLI.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from mailbox_service.audit import OPERATOR, AuditChain, AuditTrail
from mailbox_service.audit.entry import AuditAction
from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.log import get_logger
from mailbox_service.mail.email import EmailRenderer
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.paths import templates_dir
from mailbox_service.periodic import PeriodicThread
from mailbox_service.senders.acknowledgement import AcknowledgementPass
from mailbox_service.senders.event_log import EventLog
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.senders.reminders import ReminderPass
from mailbox_service.settings import Settings
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.leases import RunLease
from mailbox_service.storage.mongo import Collections, connect
from mailbox_service.storage.reminders import ReminderStore
from mailbox_service.storage.sender_events import SenderEventStore

log = get_logger(__name__)

CHECK_EVERY_S = 60.0

Outcome = tuple[AuditAction, dict[str, Any]] | None
"""What a run changed, as its audit entry (action, details); None when it changed nothing."""


@dataclass(frozen=True)
class SenderPass:
    name: str
    """Its lease's `_id` and the name in logs."""
    interval_s: float
    lease_s: float
    run: Callable[[Collections, dt.datetime], Awaitable[Outcome]]


def build_renderer(settings: Settings) -> EmailRenderer:
    return EmailRenderer(
        templates_dir() / "email",
        portal_url=settings.portal_url,
        default_locale=settings.notify.default_locale,
    )


def reminder_pass(
    store: ReminderStore,
    settings: Settings,
    registry: DocumentTypeRegistry,
    renderer: EmailRenderer,
) -> ReminderPass:
    """The pass the CLI and the worker run (its own SMTP connection, closed after each run)."""
    return ReminderPass(
        store,
        registry,
        renderer,
        SmtpSender(settings.smtp),
        settings,
    )


class SenderPasses:
    """The passes of one worker process, and the check that runs those that are due."""

    def __init__(
        self, settings: Settings, registry: DocumentTypeRegistry, broker: dramatiq.Broker
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.broker = broker
        self.renderer = build_renderer(settings)
        self.passes = [
            p
            for p in (
                SenderPass(
                    "senders.reminders",
                    settings.reminder.interval_s,
                    settings.reminder.lease_s,
                    self._remind,
                ),
                SenderPass(
                    "senders.acknowledgement",
                    settings.acknowledgement.interval_s,
                    settings.reminder.lease_s,
                    self._acknowledge,
                ),
            )
            if p.interval_s > 0
        ]

    async def _remind(self, collections: Collections, at: dt.datetime) -> Outcome:
        store = ReminderStore(collections)
        report = await reminder_pass(store, self.settings, self.registry, self.renderer).run(at)
        if not (report.sent or report.failed):
            return None
        return "reminders.sent", {**report.details(), "by": "worker"}

    async def _acknowledge(self, collections: Collections, at: dt.datetime) -> Outcome:
        documents = DocumentStatusStore(collections)
        fallback = PrintFallback(documents, EventLog(SenderEventStore(collections), self.broker))
        counts = await AcknowledgementPass(documents, fallback, self.registry).run(at)
        if not counts.total_printed:
            return None
        details = {"at": at.isoformat(), "printed": dict(counts.printed), "by": "worker"}
        return "acknowledgement.printed", details

    async def run_due(self) -> list[str]:
        """Run every pass whose lease this process wins; the names of those it ran."""
        client = connect(self.settings.mongo)
        trail: AuditTrail | None = None
        ran: list[str] = []
        try:
            collections = Collections.of(client, self.settings.mongo.database)
            for sender_pass in self.passes:
                lease = RunLease(
                    collections, sender_pass.name, sender_pass.lease_s, sender_pass.interval_s
                )
                await lease.prepare()
                if not await lease.claim():
                    continue
                try:
                    outcome = await sender_pass.run(collections, utcnow())
                except Exception as exc:
                    # Its documents are left as they were (each change is one compare-and-set):
                    # the next interval runs the pass again; the others still run now.
                    log.error(
                        "senders.pass_failed",
                        sender_pass=sender_pass.name,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    outcome = None
                await lease.finish()
                ran.append(sender_pass.name)
                if outcome is not None:
                    trail = trail or AuditTrail(AuditChain(collections), self.settings.audit)
                    action, details = outcome
                    await trail.record(action, OPERATOR, details=details)
            return ran
        finally:
            if trail is not None:
                await trail.close()
            await client.close()


def sender_passes_thread(passes: SenderPasses) -> PeriodicThread:
    """Checks every minute (or every interval, when shorter) whether a pass is due."""
    return PeriodicThread(
        "sender-passes",
        min([CHECK_EVERY_S, *(p.interval_s for p in passes.passes)]),
        lambda: asyncio.run(passes.run_due()),
        failure_event="senders.pass_failed",
        first_run_at_once=True,
    )
