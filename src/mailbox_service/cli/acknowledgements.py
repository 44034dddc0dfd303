"""`mailbox-service acknowledgements run`: print documents that had to be read and were not."""

from __future__ import annotations

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.retention import parse_at
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.senders.acknowledgement import AcknowledgementPass
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.wiring.services import Services


@click.group()
def acknowledgements() -> None:
    """Acknowledgement: unread documents of types that must be read go to print."""


@acknowledgements.command("run")
@click.option("--at", "at_text", metavar="ISO-TIME", help="Run as if it were this time.")
@click.option("--dry-run", is_flag=True, help="Print the counts per type; change nothing.")
def run(at_text: str | None, dry_run: bool) -> None:
    """One pass (the worker runs it periodically): every document still unread
    `print_if_unread_after` after it was stored turns into print, and its sender is told."""
    at = parse_at(at_text)

    async def body(services: Services) -> None:
        documents = services.document_status
        fallback = PrintFallback(documents, services.sender_events)
        counts = await AcknowledgementPass(documents, fallback, services.registry).run(at, dry_run)
        stamp = at.isoformat().replace("+00:00", "Z")
        click.echo(f"documents unread past their acknowledgement period at {stamp}:")
        for name in sorted(counts.due):
            line = f"  {name}: due {counts.due[name]}"
            click.echo(line if dry_run else f"{line}, printed {counts.printed[name]}")
        if not counts.due:
            click.echo("  none (no type requires acknowledgement)")
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        click.echo(f"turned into print: {counts.total_printed}")
        if counts.total_printed:
            await services.audit.record(
                "acknowledgement.printed",
                OPERATOR,
                details={"at": at.isoformat(), "printed": dict(counts.printed)},
            )

    run_with_services(body)
