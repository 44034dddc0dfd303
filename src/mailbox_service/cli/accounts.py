"""`mailbox-service accounts`: paperless consent and contact data, for operators."""

from __future__ import annotations

import click
import msgspec

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.confirm import confirm_or_abort
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import InvalidMetadata
from mailbox_service.lifecycle.erasure import Erasure
from mailbox_service.types import AccountId, Email, Locale
from mailbox_service.wiring.services import Services


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


@accounts.command("erase")
@click.argument("account_id")
@click.option("--dry-run", is_flag=True, help="Print what would go and stay; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def erase(account_id: str, dry_run: bool, yes: bool) -> None:
    """Erase ACCOUNT_ID: delete every document no law requires us to keep (with its file and
    notification data), anonymise the account record, and print what stays and why."""
    _check(account_id, AccountId, "account_id")

    async def body(services: Services) -> None:
        erasure = Erasure(services.database, services.registry, services.blobs)
        plan = await erasure.plan(account_id)
        if not plan.account_exists and not plan.delete and not plan.keep:
            raise click.ClickException(f"no account {account_id!r} and no documents of it")
        for line in plan.lines():
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing changed")
            return
        confirm_or_abort(f"Erase account {account_id} as shown?", yes=yes)
        result = await erasure.apply(plan)
        await services.audit.record(
            "account.erased",
            OPERATOR,
            account_id=account_id,
            details={
                "deleted": result.deleted,
                "deleted_by_type": plan.deleted_by_type(),
                "kept": [{"id": k.id, "type": k.type, "why": k.why} for k in result.kept[:50]],
                "kept_count": len(result.kept),
            },
        )
        click.echo(f"erased: deleted {result.deleted} documents, kept {len(result.kept)}")
        if result.raced:
            click.echo(f"{result.raced} documents were put on hold meanwhile and were kept")
        for key in result.blobs_left:
            click.echo(f"blob not deleted (the orphan sweep retries): {key}", err=True)

    run_with_services(body)
