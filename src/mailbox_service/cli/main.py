"""Assembles the command groups onto the root group."""

from __future__ import annotations

from mailbox_service.cli import accounts, dev, doctypes, keys, migrate, serve, sweep
from mailbox_service.cli.base import root

for command in (
    serve.serve,
    migrate.migrate,
    keys.keys,
    accounts.accounts,
    sweep.sweep,
    doctypes.doctypes,
    dev.dev,
):
    root.add_command(command)

main = root
