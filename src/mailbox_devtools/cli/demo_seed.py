"""`mailbox-service demo seed`: the reference portal's demo users, accounts and documents."""

from __future__ import annotations

import click

from mailbox_devtools.demo.seed import DemoSeed, seed_demo
from mailbox_service.cli.runtime import run_with_services


@click.command("seed")
def seed() -> None:
    """Store the demo inbox (idempotent: running it again stores nothing twice)."""
    result: DemoSeed = run_with_services(seed_demo)
    click.echo(
        f"demo inbox: {result.created} documents stored, {result.existing} already there, "
        f"accounts {', '.join(result.accounts)}"
    )
    for user in result.users:
        click.echo(f"  sign in as {user.sub:<6} ({user.name}): accounts {', '.join(user.accounts)}")
