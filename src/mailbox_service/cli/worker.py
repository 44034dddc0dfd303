"""`mailbox-service worker`: deliver notifications (email, real time) and webhooks, and run the
outbox and webhook sweeps."""

from __future__ import annotations

import click

from mailbox_service.log import configure_logging
from mailbox_service.notifications.channels import CHANNELS, QUEUE
from mailbox_service.notifications.worker import WorkerOptions, run
from mailbox_service.observability import tracing
from mailbox_service.senders.events import WEBHOOK_QUEUE
from mailbox_service.settings import load_settings


@click.command()
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes.",
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker threads per process for email and real-time jobs (webhook jobs have their "
    "own: MAILBOX_WEBHOOK_THREADS).",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice([*(QUEUE[c] for c in CHANNELS), WEBHOOK_QUEUE]),
    help="Only consume this queue (repeatable); default: all.",
)
@click.option(
    "--no-sweep", is_flag=True, help="Do not run the outbox sweep here (another worker runs it)."
)
def worker(processes: int, threads: int, queues: tuple[str, ...], no_sweep: bool) -> None:
    """Consume notification jobs until SIGTERM or Ctrl-C."""
    settings = load_settings()
    configure_logging(settings.log_format, enrich=(tracing.add_trace_ids,))
    options = WorkerOptions(
        processes=processes,
        threads=threads,
        queues=queues or WorkerOptions().queues,
        sweep=not no_sweep,
    )
    run(settings, options)
