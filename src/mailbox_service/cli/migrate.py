"""`mailbox-service migrate`: apply pending migrations, or list them with --status."""

from __future__ import annotations

import click

from mailbox_service.cli.runtime import run_with_services
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.wiring.services import Services


def migrator_for(services: Services) -> Migrator:
    ctx = MigrationContext(services.settings, services.database, services.blobs)
    return Migrator(ctx, migrations_dir())


@click.command()
@click.option(
    "--status", "show_status", is_flag=True, help="List applied and pending; change nothing."
)
def migrate(show_status: bool) -> None:
    """Apply pending database and bucket migrations, in order."""

    async def body(services: Services) -> None:
        migrator = migrator_for(services)
        if show_status:
            status = await migrator.status()
            for applied in status.applied:
                click.echo(f"applied  {applied}")
            for pending in status.pending:
                click.echo(f"pending  {pending.id}")
            return
        done = await migrator.apply_pending(lambda m: click.echo(f"applied  {m.id}"))
        if not done:
            click.echo("nothing to apply")

    run_with_services(body)
