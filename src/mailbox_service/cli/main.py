"""Assembles the command groups onto the root group."""

from __future__ import annotations

from mailbox_service.cli import (
    accounts,
    acknowledgements,
    audit,
    backfill,
    backup,
    devtools,
    doctypes,
    email,
    evidence,
    holds,
    keys,
    migrate,
    notifications,
    reminders,
    retention,
    serve,
    sweep,
    tokens,
    webhooks,
    worker,
)
from mailbox_service.cli.base import root

for command in (
    serve.serve,
    migrate.migrate,
    keys.keys,
    accounts.accounts,
    sweep.sweep,
    worker.worker,
    notifications.notifications,
    email.email,
    doctypes.doctypes,
    devtools.dev,
    backfill.backfill,
    devtools.demo,
    tokens.tokens,
    audit.audit,
    retention.retention,
    holds.hold,
    evidence.evidence,
    backup.backup,
    backup.restore,
    webhooks.webhooks,
    acknowledgements.acknowledgements,
    reminders.reminders,
):
    root.add_command(command)

main = root
