"""`mailbox-service webhooks ...`: senders' webhook endpoints and their deliveries.

`create` prints the signing secret alone on stdout (`SECRET=$(mailbox-service webhooks create
...)`); everything else it says goes to stderr. Changes are audited as the operator's.
"""

from __future__ import annotations

import datetime as dt

import click

from mailbox_service.audit import OPERATOR
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.errors import MailboxError
from mailbox_service.webhooks.deliveries import DELIVERY_STATUSES, WebhookDelivery
from mailbox_service.webhooks.endpoints import WebhookEndpoint
from mailbox_service.webhooks.operations import WebhookOperations
from mailbox_service.wiring.services import Services


def _ops(services: Services) -> WebhookOperations:
    return services.webhooks


def _at(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else "-"


def endpoint_line(endpoint: WebhookEndpoint) -> str:
    state = endpoint.state
    if endpoint.disabled_reason:
        state += f" ({endpoint.disabled_reason})"
    return (
        f"{endpoint.id} source={endpoint.source} events={','.join(endpoint.events)} "
        f"{state} url={endpoint.url}"
    )


def delivery_line(delivery: WebhookDelivery) -> str:
    last = delivery.last_error or (
        f"HTTP {delivery.last_status_code}" if delivery.last_status_code else "-"
    )
    return (
        f"{delivery.id} {delivery.status} {delivery.type} endpoint={delivery.endpoint_id} "
        f"event={delivery.event_id} attempts={delivery.attempts} "
        f"next={_at(delivery.next_at)} last={last}"
    )


def _fail(exc: MailboxError) -> click.ClickException:
    return click.ClickException(exc.message)


@click.group()
def webhooks() -> None:
    """Signed webhooks: where each source's document events are delivered."""


@webhooks.command("create")
@click.option("--source", required=True, help="The sender (an API key's source).")
@click.option("--url", required=True, help="http(s) URL of the sender's receiver.")
@click.option(
    "--events",
    required=True,
    help="Comma-separated event types (document.delivered,...) or '*' for all.",
)
def create(source: str, url: str, events: str) -> None:
    """Create an endpoint; prints its signing secret alone on stdout (shown only now)."""

    async def body(services: Services) -> None:
        try:
            created = await _ops(services).create(
                source=source, url=url, events=events.split(","), by="operator"
            )
        except MailboxError as exc:
            raise _fail(exc) from None
        await services.audit.record(
            "webhook.created",
            OPERATOR,
            details={
                "endpoint_id": created.id,
                "source": created.source,
                "url": created.url[:512],
                "events": created.events,
            },
        )
        click.echo(f"created: {endpoint_line(created)}", err=True)
        click.echo("the signing secret follows on stdout; it is not shown again", err=True)
        click.echo(created.secret)

    run_with_services(body)


@webhooks.command("list")
@click.option("--source", help="Only this source's endpoints.")
def list_endpoints(source: str | None) -> None:
    """Every endpoint, oldest first (never a secret)."""

    async def body(services: Services) -> None:
        found = await _ops(services).all(source)
        for endpoint in found:
            click.echo(endpoint_line(endpoint))
        click.echo(f"{len(found)} endpoints", err=True)

    run_with_services(body)


@webhooks.command("revoke")
@click.argument("endpoint_id")
def revoke(endpoint_id: str) -> None:
    """Disable an endpoint for good."""

    async def body(services: Services) -> None:
        try:
            endpoint = await _ops(services).revoke(endpoint_id, "operator")
        except MailboxError as exc:
            raise _fail(exc) from None
        await services.audit.record(
            "webhook.revoked",
            OPERATOR,
            details={"endpoint_id": endpoint.id, "source": endpoint.source},
        )
        click.echo(f"revoked: {endpoint_line(endpoint)}")

    run_with_services(body)


@webhooks.command("test")
@click.argument("endpoint_id")
def test(endpoint_id: str) -> None:
    """Send a signed test event now and print the receiver's answer; exit 1 unless 2xx."""

    async def body(services: Services) -> bool:
        try:
            result = await _ops(services).test(endpoint_id)
        except MailboxError as exc:
            raise _fail(exc) from None
        await services.audit.record(
            "webhook.tested",
            OPERATOR,
            details={"endpoint_id": endpoint_id, "status_code": result.status_code},
        )
        answer = f"HTTP {result.status_code}" if result.status_code else result.error
        click.echo(f"{result.webhook_id}: {answer} in {result.ms} ms")
        if result.body:
            click.echo(result.body)
        return result.delivered

    if not run_with_services(body):
        raise SystemExit(1)


@webhooks.command("deliveries")
@click.option("--endpoint", "endpoint_id", help="Only this endpoint's deliveries.")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES), help="Only in this state.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 500))
def deliveries(endpoint_id: str | None, status: str | None, limit: int) -> None:
    """Deliveries, newest first; `--status failed` lists what needs a resend."""

    async def body(services: Services) -> None:
        try:
            found = await _ops(services).page(
                endpoint_id=endpoint_id,
                status=status,  # type: ignore[arg-type]  # click.Choice checked it
                limit=limit,
            )
        except MailboxError as exc:
            raise _fail(exc) from None
        for delivery in found:
            click.echo(delivery_line(delivery))
        click.echo(f"{len(found)} deliveries", err=True)

    run_with_services(body)


@webhooks.command("resend")
@click.argument("delivery_id")
def resend(delivery_id: str) -> None:
    """Deliver again with the same webhook-id (attempts start from zero)."""

    async def body(services: Services) -> None:
        try:
            delivery = await _ops(services).resend(delivery_id, "operator")
        except MailboxError as exc:
            raise _fail(exc) from None
        await services.audit.record(
            "webhook.resent",
            OPERATOR,
            details={"delivery_id": delivery_id, "endpoint_id": delivery.endpoint_id},
        )
        click.echo(f"resent: {delivery_line(delivery)}")

    run_with_services(body)
