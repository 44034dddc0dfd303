"""`mailbox-service hold set|release|list`: legal holds on a document or a whole account."""

from __future__ import annotations

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import NotFound
from mailbox_service.lifecycle.legal_holds import LegalHolds
from mailbox_service.storage.holds import Hold
from mailbox_service.wiring.services import Services


def hold_line(hold: Hold) -> str:
    at = hold.set_at.isoformat().replace("+00:00", "Z")
    account = f" account={hold.account_id}" if hold.scope == "document" else ""
    return f"{hold.scope} {hold.id}{account} since {at} by {hold.set_by}: {hold.reason}"


def _target(document: str | None, account: str | None) -> tuple[str, str]:
    if bool(document) == bool(account):
        raise click.UsageError("give exactly one of --document ID or --account ID")
    return ("document", document) if document else ("account", account)  # type: ignore[return-value]


def _holds(services: Services) -> LegalHolds:
    return services.legal_holds


@click.group()
def hold() -> None:
    """Legal holds: held documents survive purge and erasure; their files cannot be deleted."""


@hold.command("set")
@click.option("--document", help="Document id to hold.")
@click.option("--account", help="Account id: hold all its documents, present and future.")
@click.option("--reason", required=True, help="Why (a case number, a request).")
def set_hold(document: str | None, account: str | None, reason: str) -> None:
    """Put a document or an account under legal hold."""
    scope, target = _target(document, account)
    if not reason.strip():
        raise click.BadParameter("must not be empty", param_hint="--reason")

    async def body(services: Services) -> None:
        holds = _holds(services)
        try:
            if scope == "document":
                held = await holds.hold_document(target, reason, "operator")
            else:
                held = await holds.hold_account(target, reason, "operator")
        except NotFound as exc:
            raise click.ClickException(exc.message) from None
        await services.audit.record(
            "hold.set",
            OPERATOR,
            account_id=held.account_id,
            document_id=target if scope == "document" else None,
            details={"scope": scope, "reason": reason},
        )
        click.echo(f"held: {hold_line(held)}")

    run_with_services(body)


@hold.command("release")
@click.option("--document", help="Document id.")
@click.option("--account", help="Account id.")
def release_hold(document: str | None, account: str | None) -> None:
    """Lift a legal hold."""
    scope, target = _target(document, account)

    async def body(services: Services) -> None:
        holds = _holds(services)
        try:
            if scope == "document":
                released = await holds.release_document(target)
            else:
                released = await holds.release_account(target)
        except NotFound as exc:
            raise click.ClickException(exc.message) from None
        await services.audit.record(
            "hold.released",
            OPERATOR,
            account_id=released.account_id,
            document_id=target if scope == "document" else None,
            details={"scope": scope, "reason": released.reason},
        )
        click.echo(f"released: {hold_line(released)}")

    run_with_services(body)


@hold.command("list")
def list_holds() -> None:
    """Every hold, account holds first."""

    async def body(services: Services) -> None:
        found = await _holds(services).all()
        for held in found:
            click.echo(hold_line(held))
        click.echo(f"{len(found)} holds")

    run_with_services(body)
