"""`mailbox-service retention purge`: delete documents past their `retain_until`."""

from __future__ import annotations

import datetime as dt

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.confirm import confirm_or_abort
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.clock import utcnow
from mailbox_service.lifecycle.retention import PurgePlan, RetentionPurge
from mailbox_service.wiring.services import Services


def parse_at(value: str | None) -> dt.datetime:
    """`--at`: an ISO 8601 time; without a zone it is UTC."""
    if value is None:
        return utcnow()
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (e.g. 2036-01-01T00:00:00Z)", param_hint="--at"
        ) from None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def plan_lines(plan: PurgePlan) -> list[str]:
    at = plan.at.isoformat().replace("+00:00", "Z")
    lines = [f"documents past retain_until at {at}:"]
    kinds = sorted(set(plan.purge) | set(plan.held) | set(plan.locked))
    if not kinds:
        lines.append("  none")
    for kind in kinds:
        lines.append(
            f"  {kind}: purge {plan.purge[kind]}, keep {plan.held[kind]} held, "
            f"{plan.locked[kind]} file still locked"
        )
    lines.append(f"total to purge: {sum(plan.purge.values())}")
    return lines


@click.group()
def retention() -> None:
    """Retention: delete documents whose retain_until has passed."""


@retention.command("purge")
@click.option("--at", "at_text", metavar="ISO-TIME", help="Purge as if it were this time.")
@click.option("--dry-run", is_flag=True, help="Print the counts per type; delete nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def purge(at_text: str | None, dry_run: bool, yes: bool) -> None:
    """Delete documents past retain_until (metadata, then file), never one under hold."""
    at = parse_at(at_text)

    async def body(services: Services) -> None:
        purger = RetentionPurge(
            services.database,
            services.blobs,
            services.registry,
            batch_size=services.settings.retention.batch_size,
        )
        plan = await purger.plan(at)
        for line in plan_lines(plan):
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing deleted")
            return
        if not plan.purge:
            return
        confirm_or_abort(f"Delete {sum(plan.purge.values())} documents for good?", yes=yes)
        report = await purger.run(at)
        await services.audit.record(
            "retention.purged",
            OPERATOR,
            details={
                "at": at.isoformat(),
                "purged": dict(report.purged),
                "blobs_failed": report.blobs_failed,
            },
        )
        for kind, count in sorted(report.purged.items()):
            click.echo(f"purged {kind}: {count}")
        click.echo(f"purged {report.total} documents in {report.seconds:.1f} s")
        if report.blobs_failed:
            click.echo(
                f"{report.blobs_failed} files could not be deleted (the orphan sweep retries; "
                "see the log)",
                err=True,
            )

    run_with_services(body)
