"""`mailbox-service keys`: API keys for output-management systems and operators."""

from __future__ import annotations

import re

import click

from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import NotFound
from mailbox_service.server.services import Services
from mailbox_service.storage.api_keys import SCOPES


def _source_name(_: click.Context, __: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", value):
        raise click.BadParameter("use 1-64 lowercase letters, digits, '.', '_' or '-'")
    return value


@click.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option(
    "--source",
    required=True,
    callback=_source_name,
    help="Sending system's name; becomes each document's `source`.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    default=("ingest",),
    show_default=True,
    help="Repeat for several scopes.",
)
def create(source: str, scopes: tuple[str, ...]) -> None:
    """Create a key and print it alone on stdout (it is not shown again)."""

    async def body(services: Services) -> str:
        _, secret = await services.api_keys.create(source, sorted(set(scopes)))
        return secret

    click.echo(run_with_services(body))


@keys.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""

    async def body(services: Services) -> None:
        for key in await services.api_keys.list():
            state = f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else "active"
            click.echo(
                f"{key.key_id}  {key.source:<24} {','.join(key.scopes):<14} "
                f"created {key.created_at:%Y-%m-%dT%H:%M:%SZ}  {state}"
            )

    run_with_services(body)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke KEY_ID (the first column of `keys list`); it stops working at once."""

    async def body(services: Services) -> None:
        if not await services.api_keys.revoke(key_id):
            raise NotFound(f"no active key with id {key_id!r}")
        click.echo(f"revoked {key_id}")

    run_with_services(body)
