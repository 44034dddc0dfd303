"""`mailbox-service doctypes`: which document types this installation knows."""

from __future__ import annotations

import click
import msgspec

from mailbox_service.doctypes import load_registry


@click.group()
def doctypes() -> None:
    """Inspect the registered document types (built-ins and plugins)."""


@doctypes.command("list")
def list_types() -> None:
    """One line per type: name, label, digital, retention, where it comes from."""
    for doctype in load_registry():
        origin = type(doctype).__module__
        click.echo(
            f"{doctype.name:<20} {doctype.label:<20} digital={str(doctype.digital).lower():<5} "
            f"retention={doctype.retention.days}d  {origin}"
        )


@doctypes.command("schema")
@click.argument("name")
def schema(name: str) -> None:
    """Print the JSON Schema of NAME's attributes."""
    click.echo(msgspec.json.format(msgspec.json.encode(load_registry().get(name).json_schema())))
