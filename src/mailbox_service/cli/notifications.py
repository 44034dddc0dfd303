"""`mailbox-service notifications`: the operator API's notification views, from a shell."""

from __future__ import annotations

import click
import msgspec

from mailbox_service.admin.schemas import NotificationPage, NotificationStats
from mailbox_service.admin.service import MAX_PAGE
from mailbox_service.audit import OPERATOR
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.clock import parse_time
from mailbox_service.notifications.channels import CHANNELS, STATUSES
from mailbox_service.wiring.controllers import notification_admin
from mailbox_service.wiring.services import Services

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def _echo_json(value: object) -> None:
    click.echo(msgspec.json.format(msgspec.json.encode(value), indent=2).decode())


def _print_stats(stats: NotificationStats) -> None:
    click.echo(
        f"documents created {stats.since:%Y-%m-%dT%H:%M:%SZ} .. {stats.until:%Y-%m-%dT%H:%M:%SZ}"
    )
    for channel, counts in stats.summary.items():
        parts = ", ".join(f"{status} {count}" for status, count in counts.items())
        click.echo(f"  {channel:<9} {parts}")
    if stats.totals:
        click.echo("\nby type")
        for row in stats.totals:
            click.echo(f"  {row.channel:<9} {row.type:<20} {row.status:<8} {row.count:>8}")
        click.echo("\nper day")
        for day in stats.days:
            click.echo(
                f"  {day.day}  {day.channel:<9} {day.type:<20} {day.status:<8} {day.count:>8}"
            )


def _print_page(page: NotificationPage, channels: tuple[str, ...]) -> None:
    for item in page.items:
        click.echo(
            f"{item.created_at:%Y-%m-%dT%H:%M:%SZ}  {item.document_id}  {item.type}  "
            f"account {item.account_id}"
        )
        for channel in channels:
            state = item.notifications[channel]
            detail = state.error or state.reason or ""
            click.echo(f"    {channel:<9} {state.status:<8} attempts {state.attempts}  {detail}")


@click.group()
def notifications() -> None:
    """Notification statistics, failed notifications, resend."""


@notifications.command("stats")
@click.option("--since", help="Created at or after (date or ISO time); default 7 days ago.")
@click.option("--until", help="Created before (date or ISO time); default now.")
@JSON_OPTION
def stats(since: str | None, until: str | None, as_json: bool) -> None:
    """Documents by channel x status x type, in total and per day."""

    async def body(services: Services) -> NotificationStats:
        return await notification_admin(services).stats(
            parse_time(since, "since"), parse_time(until, "until")
        )

    result = run_with_services(body)
    if as_json:
        _echo_json(result)
    else:
        _print_stats(result)


@notifications.command("failed")
@click.option("--status", default="failed", show_default=True, type=click.Choice(STATUSES))
@click.option("--channel", type=click.Choice(CHANNELS), help="Only this channel.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.option("--cursor", help="`next_cursor` printed by the previous page.")
@JSON_OPTION
def failed(status: str, channel: str | None, limit: int, cursor: str | None, as_json: bool) -> None:
    """Documents whose notification is failed (or --status), newest first, with the error."""

    async def body(services: Services) -> NotificationPage:
        return await notification_admin(services).list(status, channel, limit, cursor)

    page = run_with_services(body)
    if as_json:
        _echo_json(page)
        return
    _print_page(page, (channel,) if channel else CHANNELS)
    if not page.items:
        click.echo(f"no {status} notifications")
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@notifications.command("resend")
@click.argument("document_id")
@click.option("--channel", required=True, help="email or realtime.")
@click.option("--by", default="operator-cli", show_default=True, help="Recorded as who resent it.")
def resend(document_id: str, channel: str, by: str) -> None:
    """Reset DOCUMENT_ID's channel to pending and enqueue it again."""

    async def body(services: Services) -> None:
        result = await notification_admin(services).resend(document_id, channel, by=by)
        await services.audit.record(
            "notification.resent",
            OPERATOR,
            document_id=result.document_id,
            details={"channel": result.channel, "by": by, "enqueued": result.enqueued},
        )
        queued = "enqueued" if result.enqueued else "not enqueued (Redis down; the sweep will)"
        click.echo(f"{result.document_id} {result.channel}: {result.status}, {queued}")

    run_with_services(body)
