"""`mailbox-service tokens`: portal JWTs for development and tests.

Production tokens come from the identity provider (JWKS); this command only signs with the
HS256 development secret and refuses when none is configured.
"""

from __future__ import annotations

import click
import msgspec

from mailbox_service.auth.tokens import mint_token
from mailbox_service.errors import InvalidMetadata
from mailbox_service.settings import load_settings
from mailbox_service.types import AccountId


@click.group()
def tokens() -> None:
    """Portal tokens for development."""


@tokens.command("mint")
@click.option("--sub", required=True, help="The user the token stands for (`sub` claim).")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    required=True,
    help="An account the user may read; repeat for several.",
)
@click.option(
    "--ttl",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Lifetime in seconds; at most MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S (default 43200).",
)
def mint(sub: str, accounts: tuple[str, ...], ttl: int) -> None:
    """Print an HS256 portal token alone on stdout."""
    if not sub.strip():
        raise InvalidMetadata("--sub: must not be empty", field="sub")
    for account in accounts:
        try:
            msgspec.convert(account, AccountId)
        except msgspec.ValidationError:
            raise InvalidMetadata(
                f"--account: {account!r} is not an account id", field="account"
            ) from None
    settings = load_settings()
    click.echo(mint_token(settings.auth, sub, list(dict.fromkeys(accounts)), ttl_s=ttl))
