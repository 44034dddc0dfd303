"""`mailbox-service keys`: API keys for output-management systems and operators."""

from __future__ import annotations

import re

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import NotFound
from mailbox_service.storage.api_keys import SCOPES
from mailbox_service.wiring.services import Services


def _source_name(_: click.Context, __: click.Parameter, value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", value):
        raise click.BadParameter("use 1-64 lowercase letters, digits, '.', '_' or '-'")
    return value


MAX_PATTERNS = 100
_PATTERN_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-*?[]!"
)


def _account_patterns(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Globs over account ids: the id alphabet plus `*`, `?`, `[...]` (fnmatch)."""
    if len(values) > MAX_PATTERNS:
        raise click.BadParameter(f"at most {MAX_PATTERNS} patterns")
    for pattern in values:
        if not 1 <= len(pattern) <= 64 or not set(pattern) <= _PATTERN_CHARS:
            raise click.BadParameter(
                f"{pattern!r}: use 1-64 characters of an account id (letters, digits, '.', "
                "'_', ':', '-') and the wildcards '*', '?', '[...]'"
            )
        if pattern.count("[") != pattern.count("]"):
            raise click.BadParameter(f"{pattern!r}: unbalanced '[' ... ']'")
    return tuple(dict.fromkeys(values))


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
@click.option(
    "--accounts",
    "accounts",
    multiple=True,
    callback=_account_patterns,
    metavar="PATTERN",
    help="Only accounts whose id matches this glob (e.g. 'LEW-*'); repeat for several. "
    "Default: every account.",
)
def create(source: str, scopes: tuple[str, ...], accounts: tuple[str, ...]) -> None:
    """Create a key and print it alone on stdout (it is not shown again).

    With --accounts, an ingest key may only send documents to matching accounts; any other
    account is answered 403 without looking the account up.
    """
    if accounts and "ingest" not in scopes:
        raise click.BadParameter(
            "only an ingest key can be bound to accounts", param_hint="--accounts"
        )

    async def body(services: Services) -> str:
        key, secret = await services.api_keys.create(source, sorted(set(scopes)), accounts)
        details = {"key_id": key.key_id, "source": source, "scopes": sorted(set(scopes))}
        if accounts:
            details["accounts"] = list(accounts)
        await services.audit.record("key.created", OPERATOR, details=details)
        return secret

    click.echo(run_with_services(body))


@keys.command("list")
def list_keys() -> None:
    """List keys (never their secrets)."""

    async def body(services: Services) -> None:
        for key in await services.api_keys.list():
            state = f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else "active"
            reach = ",".join(key.accounts) if key.accounts else "all accounts"
            click.echo(
                f"{key.key_id}  {key.source:<24} {','.join(key.scopes):<14} "
                f"created {key.created_at:%Y-%m-%dT%H:%M:%SZ}  {state:<28} {reach}"
            )

    run_with_services(body)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke KEY_ID (the first column of `keys list`).

    It stops working within MAILBOX_AUTH_API_KEY_CACHE_S (default 5 s) on every API node: each
    node trusts a key it has checked for that long.
    """

    async def body(services: Services) -> None:
        if not await services.api_keys.revoke(key_id):
            raise NotFound(f"no active key with id {key_id!r}")
        await services.audit.record("key.revoked", OPERATOR, details={"key_id": key_id})
        click.echo(f"revoked {key_id}")

    run_with_services(body)
