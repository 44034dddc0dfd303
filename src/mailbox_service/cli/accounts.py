"""`mailbox-service accounts`: paperless consent and contact data, for operators."""

from __future__ import annotations

import click
import msgspec

from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import InvalidMetadata
from mailbox_service.ingestion.schemas import AccountId, Email, Locale
from mailbox_service.server.services import Services


def _check(value: str | None, kind: object, name: str) -> None:
    if value is None:
        return
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidMetadata(f"{name}: {exc}", field=name) from None


@click.group()
def accounts() -> None:
    """Show and change customer accounts."""


@accounts.command("set")
@click.argument("account_id")
@click.option("--paperless/--no-paperless", default=None, help="Paperless consent.")
@click.option("--email", default=None, help="Notification email address.")
@click.option("--locale", default=None, help="Locale for emails, e.g. de or en.")
@click.option("--by", default="operator-cli", show_default=True, help="Recorded as who changed it.")
def set_account(
    account_id: str, paperless: bool | None, email: str | None, locale: str | None, by: str
) -> None:
    """Create or update ACCOUNT_ID."""
    _check(account_id, AccountId, "account_id")
    _check(email, Email, "email")
    _check(locale, Locale, "locale")
    kwargs: dict[str, object] = {}
    if email is not None:
        kwargs["email"] = email
    if locale is not None:
        kwargs["locale"] = locale

    async def body(services: Services) -> None:
        account = await services.accounts.update(account_id, by=by, paperless=paperless, **kwargs)  # type: ignore[arg-type]
        click.echo(msgspec.json.encode(account).decode())

    run_with_services(body)


@accounts.command("show")
@click.argument("account_id")
def show(account_id: str) -> None:
    """Print ACCOUNT_ID as JSON."""

    async def body(services: Services) -> None:
        account = await services.accounts.get(account_id)
        if account is None:
            raise InvalidMetadata(f"no account {account_id!r}", field="account_id")
        click.echo(msgspec.json.encode(account).decode())

    run_with_services(body)
