"""`mailbox-service sweep`: remove blobs orphaned by a crash between the two writes."""

from __future__ import annotations

import datetime as dt

import click

from mailbox_service.cli.runtime import run_with_services
from mailbox_service.ingestion.orphans import sweep_orphans
from mailbox_service.wiring.services import Services


@click.command()
@click.option(
    "--grace",
    default=3600,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds a blob must be old before it may count as orphaned.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
def sweep(grace: int, dry_run: bool) -> None:
    """Remove blobs that no document owns (older than --grace seconds)."""

    async def body(services: Services) -> None:
        report = await sweep_orphans(
            services.blobs, services.documents, dt.timedelta(seconds=grace), dry_run=dry_run
        )
        verb = "would remove" if dry_run else "removed"
        for key in report.removed:
            click.echo(f"{verb} {key}")
        click.echo(f"examined {report.examined} blobs, {verb} {len(report.removed)}")

    run_with_services(body)
