"""`mailbox-service reminders run|backfill`: the reminder pass, by hand."""

from __future__ import annotations

import datetime as dt

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.retention import parse_at
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.clock import utcnow
from mailbox_service.senders.periodic import build_renderer, reminder_pass
from mailbox_service.senders.reminder_due import backfill_due
from mailbox_service.senders.reminders import ReminderReport, window
from mailbox_service.wiring.services import Services


def report_lines(report: ReminderReport, days_before_due: int) -> list[str]:
    due = window(report.at, days_before_due)
    stamp = report.at.isoformat().replace("+00:00", "Z")
    lines = [f"reminders as of {stamp}, documents due {due[0]:%Y-%m-%d} to {due[-1]:%Y-%m-%d}:"]
    if report.dry_run:
        lines.append(f"  would send: {report.would_send}")
    else:
        lines.append(f"  sent: {report.sent}")
    skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(report.skipped.items()))
    lines.append(
        f"  skipped: {sum(report.skipped.values())}" + (f" ({skipped})" if skipped else "")
    )
    if not report.dry_run:
        lines.append(f"  failed: {report.failed}")
        lines.append(f"  to retry next pass: {report.retry}")
        lines.append(f"  held by another pass: {report.not_claimed}")
    return lines


@click.group()
def reminders() -> None:
    """Reminder emails before documents fall due (open, unread invoices)."""


@reminders.command("run")
@click.option("--at", "at_text", metavar="ISO-TIME", help="Run as if it were this time.")
@click.option("--dry-run", is_flag=True, help="Count what would be sent; send nothing.")
def run(at_text: str | None, dry_run: bool) -> None:
    """One reminder pass (the worker runs it every MAILBOX_REMINDER_INTERVAL_S): every
    document due within MAILBOX_REMINDER_DAYS_BEFORE_DUE days that was not read, settled,
    printed or archived gets its one reminder email."""
    at = parse_at(at_text)

    async def body(services: Services) -> None:
        settings = services.settings
        renderer = build_renderer(settings)
        one_pass = reminder_pass(services.reminders, settings, services.registry, renderer)
        report = await one_pass.run(at, dry_run=dry_run)
        for line in report_lines(report, settings.reminder.days_before_due):
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing sent")
            return
        if report.sent or report.failed:
            await services.audit.record(
                "reminders.sent", OPERATOR, details={**report.details(), "by": "cli"}
            )

    run_with_services(body)


@reminders.command("backfill")
def backfill() -> None:
    """Give documents stored without a due date (before reminders existed, or by an older API
    during an upgrade) theirs; only those due today or later are written. Safe to repeat."""

    async def body(services: Services) -> None:
        today = utcnow().astimezone(dt.UTC).date()
        report = await backfill_due(services.reminders, services.registry, today)
        click.echo(f"documents given a due date: {report.dated}")
        click.echo(f"already past their due date (left alone): {report.past}")
        if report.invalid:
            click.echo(f"attributes no longer valid for their type: {report.invalid}", err=True)

    run_with_services(body)
