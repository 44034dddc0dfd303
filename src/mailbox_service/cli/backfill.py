"""`mailbox-service backfill MANIFEST`: import archived documents through the ingest service.

Exit codes: 0 every line imported or skipped; 1 some lines failed (see the errors file) or the
run was aborted because a backing service failed; 2 usage errors (no manifest, unreadable base
directory, unreadable CSV header); 130 stopped by Ctrl-C/SIGTERM (run again to carry on).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from pathlib import Path

import click
import msgspec
from prometheus_client import start_http_server

from mailbox_service.backfill.checkpoint import Checkpoint, identity_of
from mailbox_service.backfill.manifest import count_records, detect_format, read_manifest
from mailbox_service.backfill.progress import progress_for
from mailbox_service.backfill.report import ErrorLog, Summary, format_summary
from mailbox_service.backfill.runner import BackfillOptions, run_backfill, stop_on_signals
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.wiring.services import Services

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _source_name(_: click.Context, __: click.Parameter, value: str) -> str:
    # The same rule as `keys create --source`: backfilled documents can share a sender's refs.
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", value):
        raise click.BadParameter("use 1-64 lowercase letters, digits, '.', '_' or '-'")
    return value


def _base_dir(manifest: Path, given: Path | None) -> Path:
    base = (given or manifest.parent).expanduser()
    if not base.is_dir():
        raise click.UsageError(f"base directory {base} does not exist or is not a directory")
    if not os.access(base, os.R_OK | os.X_OK):
        raise click.UsageError(f"base directory {base} is not readable")
    return base.resolve()


def _exit_code(summary: Summary) -> int:
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.failed or summary.aborted:
        return EXIT_FAILED
    return EXIT_OK


@click.command()
@click.argument(
    "manifest", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
@click.option(
    "--base-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory the manifest's `file` paths are relative to [default: the manifest's].",
)
@click.option(
    "--source",
    default="backfill",
    show_default=True,
    callback=_source_name,
    help="Sending system's name; (source, source_ref) is the idempotency key.",
)
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Files uploaded at once (files are read by one thread per core, at most this many).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=None,
    help="Lines per batch: one lookup and one insert each [default: min(64, 8 x concurrency)].",
)
@click.option(
    "--notify",
    is_flag=True,
    help="Send notifications as each line's `notify` says (default: none at all).",
)
@click.option("--dry-run", is_flag=True, help="Check every line and file; write nothing.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="JSON Lines file for failed lines [default: MANIFEST_NAME.errors.jsonl here].",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Progress file for a quick resume [default: MANIFEST_NAME.checkpoint.json here].",
)
@click.option(
    "--no-checkpoint",
    is_flag=True,
    help="Neither read nor write a checkpoint: every line is verified with the database.",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Handle only the first N lines."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between progress lines when stderr is not a terminal.",
)
@click.option("--verbose", is_flag=True, help="Log every stored document.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Serve Prometheus metrics (documents ingested with origin=backfill, dependency "
    "latency) on this port while the run lasts, bound to MAILBOX_METRICS_WORKER_HOST [default: "
    "none].",
)
def backfill(
    manifest: Path,
    base_dir: Path | None,
    source: str,
    concurrency: int,
    batch_size: int | None,
    notify: bool,
    dry_run: bool,
    errors_path: Path | None,
    checkpoint_path: Path | None,
    no_checkpoint: bool,
    limit: int | None,
    as_json: bool,
    progress_every: float,
    verbose: bool,
    metrics_port: int,
) -> None:
    """Import the documents listed in MANIFEST (JSON Lines or CSV).

    Every line goes through the same ingest service as POST /v1/documents, marked
    origin=backfill. Rerunning a manifest imports nothing twice, so an interrupted run carries
    on where it stopped when run again.
    """
    base = _base_dir(manifest, base_dir)
    errors_path = errors_path or Path(f"{manifest.stem}.errors.jsonl")
    checkpoint_path = checkpoint_path or Path(f"{manifest.stem}.checkpoint.json")
    if manifest.resolve() in {errors_path.resolve(), checkpoint_path.resolve()}:
        raise click.UsageError("--errors and --checkpoint must not be the manifest itself")
    fmt = detect_format(manifest)
    # Reading the first record checks a CSV header now, as a usage error, before any work.
    next(read_manifest(manifest, fmt), None)
    total = count_records(manifest, fmt)
    if limit is not None:
        total = min(total, limit)
    checkpoint = None
    if not no_checkpoint and not dry_run:
        checkpoint = Checkpoint(
            checkpoint_path, identity_of(manifest, source=source, base_dir=base)
        )
        resume = checkpoint.load()
        if resume is not None:
            click.echo(
                f"resuming: lines up to {resume.through_line} were finished by a stopped run "
                f"(checkpoint {checkpoint_path}); only the lines after them are looked up",
                err=True,
            )

    async def body(services: Services) -> Summary:
        if not verbose:
            # One log line per document would bury the progress display; the summary and the
            # errors file are the record of a backfill.
            logging.getLogger("mailbox_service.ingestion.service").setLevel(logging.WARNING)
        options = BackfillOptions(
            manifest=manifest,
            base_dir=base,
            max_bytes=services.settings.limits.max_upload_bytes,
            source=source,
            concurrency=concurrency,
            batch_size=batch_size,
            notify=notify,
            dry_run=dry_run,
            limit=limit,
        )
        stop, abort = asyncio.Event(), asyncio.Event()

        def announce() -> None:
            click.echo(
                "stopping: finishing the documents in flight (Ctrl-C again to abort them)",
                err=True,
            )

        errors = ErrorLog(errors_path)
        metrics_server = (
            start_http_server(metrics_port, addr=services.settings.metrics.worker_host)[0]
            if metrics_port
            else None
        )
        try:
            with stop_on_signals(stop, abort, announce):
                return await run_backfill(
                    services.ingest,
                    options,
                    errors=errors,
                    progress=progress_for(total, dry_run=dry_run, interval=progress_every),
                    stop=stop,
                    abort=abort,
                    checkpoint=checkpoint,
                )
        finally:
            errors.close()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()

    summary = run_with_services(body)
    if as_json:
        click.echo(msgspec.json.encode(summary.to_dict()).decode())
    else:
        click.echo(format_summary(summary))
    sys.exit(_exit_code(summary))
