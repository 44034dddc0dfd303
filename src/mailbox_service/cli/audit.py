"""`mailbox-service audit`: read the audit trail, and verify its hash chains."""

from __future__ import annotations

import datetime as dt
import sys

import click
import msgspec

from mailbox_service.audit import DayReport
from mailbox_service.audit.entry import ACTIONS
from mailbox_service.audit.query import MAX_LIMIT, AuditFilters, AuditQuery
from mailbox_service.audit.schemas import AuditItem, AuditPage
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.wiring.services import Services

SETTLE_S = 3.0
"""How long verify waits before it calls a gap at the end of today's chain a gap."""


def _day(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"expected a date like 2026-11-30, got {value!r}") from None


def _line(item: AuditItem) -> str:
    actor = item.actor
    who = actor.sub or actor.key_id
    label = f"{actor.kind}:{who}" if who else actor.kind
    if actor.role:
        label = f"{label} ({actor.role})"
    parts = [f"{item.at:%Y-%m-%dT%H:%M:%S}Z", f"{item.action:<20}", label]
    if item.account_id:
        parts.append(f"account={item.account_id}")
    if item.document_id:
        parts.append(f"document={item.document_id}")
    if item.client:
        parts.append(f"client={item.client}")
    if item.details:
        parts.append(msgspec.json.encode(item.details).decode())
    return "  ".join(parts)


@click.group(invoke_without_command=True)
@click.option("--account", help="Only this account id.")
@click.option("--document", help="Only this document id.")
@click.option("--actor", help="Only this actor: token sub, API key id, operator or anonymous.")
@click.option("--action", type=click.Choice(ACTIONS), help="Only this action.")
@click.option("--since", help="At or after (a date or an ISO 8601 time).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIMIT))
@click.option("--cursor", help="`next_cursor` printed by the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.pass_context
def audit(
    ctx: click.Context,
    account: str | None,
    document: str | None,
    actor: str | None,
    action: str | None,
    since: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Audit entries, newest first (the same filters as GET /v1/admin/audit)."""
    if ctx.invoked_subcommand is not None:
        return
    filters = AuditFilters.parse(
        account_id=account, document_id=document, actor=actor, action=action, since=since
    )

    async def body(services: Services) -> AuditPage:
        return await AuditQuery(services.audit_log, services.cursors).page(
            filters, limit=limit, cursor=cursor
        )

    page = run_with_services(body)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(page), indent=2).decode())
        return
    for item in page.items:
        click.echo(_line(item))
    if not page.items:
        click.echo("no audit entries")
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@audit.command("verify")
@click.option("--day", callback=_day, help="Only this UTC day (YYYY-MM-DD); default: every day.")
def verify(day: str | None) -> None:
    """Walk each day's hash chain; exit 1 at the first gap, edited entry or broken link."""
    today = dt.datetime.now(dt.UTC).date().isoformat()

    async def body(services: Services) -> list[DayReport]:
        chain = services.audit.chain
        days = [day] if day else await chain.days()
        return [await chain.verify_day(d, settle_s=SETTLE_S if d == today else 0.0) for d in days]

    reports = run_with_services(body)
    if not reports:
        click.echo("no audit entries")
    failed = False
    for report in reports:
        if report.ok:
            click.echo(f"{report.day}  ok  {report.entries} entries")
        else:
            failed = True
            click.echo(f"{report.day}  FAILED at entry {report.seq}: {report.problem}")
    if failed:
        sys.exit(1)
