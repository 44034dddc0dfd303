"""`mailbox-service email preview`: see a notification email without sending one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import load_registry
from mailbox_service.errors import InvalidMetadata
from mailbox_service.mail.email import EmailRenderer
from mailbox_service.notifications.preview import (
    FORMATS,
    KINDS,
    PreviewFormat,
    render_preview,
    sample_document,
)
from mailbox_service.paths import templates_dir
from mailbox_service.settings import load_settings


@click.group()
def email() -> None:
    """Notification email templates."""


def _attributes(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidMetadata(
            f"attributes: cannot read {path}: {exc}", field="attributes"
        ) from None
    if not isinstance(value, dict):
        raise InvalidMetadata("attributes: the file must hold a JSON object", field="attributes")
    return value


@email.command("preview")
@click.option("--type", "type_name", required=True, help="Document type, e.g. invoice.")
@click.option("--locale", default=None, help="e.g. de or en; default: notify.default_locale.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: subject and text body; html: the HTML body; eml: the whole message.",
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default=KINDS[0],
    show_default=True,
    help="Which email: the notification of a new document, or its reminder before it is due "
    "(as MAILBOX_REMINDER_DAYS_BEFORE_DUE days before).",
)
@click.option(
    "--attributes",
    "attributes_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="JSON file with attributes to use instead of the type's samples.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of stdout.",
)
def preview(
    type_name: str,
    locale: str | None,
    fmt: PreviewFormat,
    kind: str,
    attributes_file: Path | None,
    out: Path | None,
) -> None:
    """Render the email of a sample document of --type, with the real templates."""
    settings = load_settings()
    doctype = load_registry().get(type_name)
    now = utcnow()
    document = sample_document(doctype, _attributes(attributes_file), now=now)
    renderer = EmailRenderer(
        templates_dir() / "email",
        portal_url=settings.portal_url,
        default_locale=settings.notify.default_locale,
    )
    data = render_preview(
        renderer,
        doctype,
        document,
        locale=locale or settings.notify.default_locale,
        fmt=fmt,
        settings=settings,
        now=now,
        kind=kind,
    )
    if out is None:
        click.echo(data.decode(errors="replace"), nl=False)
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data)} bytes)", err=True)
