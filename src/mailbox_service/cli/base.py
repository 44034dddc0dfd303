"""The root click group every command module attaches to."""

from __future__ import annotations

import sys
from typing import Any

import click

from mailbox_service.errors import MailboxError


class FriendlyGroup(click.Group):
    """Turns our own errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MailboxError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def root() -> None:
    """Document mailbox service: API, worker and operator commands."""
