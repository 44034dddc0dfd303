"""Assembles the command groups onto the root group."""

from __future__ import annotations

from mailbox_service.cli import (
    accounts,
    acknowledgements,
    audit,
    backfill,
    backup,
    demo,
    demo_seed,
    dev,
    dev_run,
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
    dev.dev,
    backfill.backfill,
    demo.demo,
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

dev.dev.add_command(dev_run.run)
demo.demo.add_command(demo_seed.seed)

main = root
