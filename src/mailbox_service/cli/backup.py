"""`mailbox-service backup DIR`, `backup verify DIR` and `restore DIR`.

The layout of DIR and what makes a snapshot consistent: `backup/layout.py`, `backup/create.py`;
the operator's side (schedules, production MongoDB and S3): docs/operations.md, "Backup and
restore".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import click

from mailbox_service.audit import OPERATOR
from mailbox_service.backfill.progress import ProgressDisplay, progress_for
from mailbox_service.backfill.report import format_bytes, format_duration
from mailbox_service.backup.create import BackupWriter
from mailbox_service.backup.layout import BackupError, read_manifest, snapshot_dir
from mailbox_service.backup.restore import Restorer, restore_snapshot
from mailbox_service.backup.storage import Storage
from mailbox_service.backup.verify import verify_backup
from mailbox_service.cli.migrate import migrator_for
from mailbox_service.cli.runtime import run_with_services
from mailbox_service.log import configure_logging
from mailbox_service.migrate import discover
from mailbox_service.observability import tracing
from mailbox_service.paths import migrations_dir
from mailbox_service.settings import load_settings
from mailbox_service.wiring.services import Services

DIRECTORY = click.Path(path_type=Path, file_okay=False)


def _progress(label: str, every: float, *, checking: bool = False) -> Any:
    def make(total: int) -> ProgressDisplay:
        return progress_for(total, dry_run=checking, interval=every, label=label, unit="documents")

    return make


class _CreateByDefault(click.Group):
    """`backup DIR` takes a backup; `backup verify DIR` checks one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_CreateByDefault, context_settings={"help_option_names": ["-h", "--help"]})
def backup() -> None:
    """Back up metadata and files into DIR (`backup DIR`), or check a backup (`backup verify
    DIR`). Restore with `mailbox-service restore DIR`."""


@backup.command("create")
@click.argument("directory", type=DIRECTORY)
@click.option("--workers", default=8, show_default=True, help="Files copied in parallel.")
@click.option(
    "--progress-every", default=5.0, show_default=True, help="Seconds between plain lines."
)
def create(directory: Path, workers: int, progress_every: float) -> None:
    """Write a new snapshot into DIR, copying only the files DIR does not hold yet."""
    settings = load_settings()
    configure_logging(settings.log_format, enrich=(tracing.add_trace_ids,))
    storage = Storage.open(settings)
    try:
        writer = BackupWriter(
            storage, directory, workers=workers, progress=_progress("backup", progress_every)
        )
        manifest = writer.run()
    finally:
        storage.close()
    took = (manifest.finished_at - manifest.started_at).total_seconds()
    counts = ", ".join(f"{n} {c.count}" for n, c in sorted(manifest.files.items()))
    click.echo(f"snapshot {manifest.snapshot} in {directory}: {counts}")
    click.echo(
        f"files: {manifest.blobs.referenced} referenced ({format_bytes(manifest.blobs.bytes)}), "
        f"{manifest.blobs.copied} new ({format_bytes(manifest.blobs.copied_bytes)}), "
        f"in {format_duration(took)}"
    )
    for problem in manifest.problems:
        click.echo(f"problem: {problem}", err=True)
    if manifest.problems:
        raise click.ClickException(f"backup finished with {len(manifest.problems)} problems")


@backup.command("verify")
@click.argument("directory", type=DIRECTORY)
@click.option("--snapshot", default=None, help="Check only this snapshot (default: all).")
@click.option(
    "--progress-every", default=5.0, show_default=True, help="Seconds between plain lines."
)
def verify(directory: Path, snapshot: str | None, progress_every: float) -> None:
    """Check every file of DIR against its SHA-256; name each missing or altered one."""
    report = verify_backup(
        directory,
        snapshot=snapshot,
        progress=_progress("verify", progress_every, checking=True),
    )
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(
        f"{len(report.snapshots)} snapshots, {report.files} metadata files, {report.blobs} "
        f"files ({format_bytes(report.bytes)}): "
        + ("ok" if report.ok else f"{len(report.problems)} problems")
    )
    if not report.ok:
        raise click.ClickException("verification failed")


@click.command()
@click.argument("directory", type=DIRECTORY)
@click.option("--snapshot", default=None, help="Restore this snapshot (default: the newest).")
@click.option("--verify", "verify_first", is_flag=True, help="Verify the snapshot first.")
@click.option("--merge", is_flag=True, help="Add to a database or bucket that holds data.")
@click.option("--workers", default=8, show_default=True, help="Files put in parallel.")
@click.option(
    "--progress-every", default=5.0, show_default=True, help="Seconds between plain lines."
)
def restore(
    directory: Path,
    snapshot: str | None,
    verify_first: bool,
    merge: bool,
    workers: int,
    progress_every: float,
) -> None:
    """Restore a snapshot of DIR into the configured database and bucket (which must be
    empty unless --merge): files under the keys they had, then the metadata."""
    chosen = snapshot_dir(directory, snapshot)
    manifest = read_manifest(chosen)
    known = {migration.id for migration in discover(migrations_dir())}
    unknown = [m for m in manifest.migrations if m not in known]
    if unknown:
        raise BackupError(
            f"the backup was taken by a newer version (unknown migrations: {', '.join(unknown)})"
            "; restore it with that version"
        )
    if verify_first:
        report = verify_backup(
            directory,
            snapshot=chosen.name,
            progress=_progress("verify", progress_every, checking=True),
        )
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        if not report.ok:
            raise click.ClickException("verification failed: nothing restored")
        click.echo(f"verified snapshot {chosen.name}: {report.blobs} files")

    async def body(services: Services) -> None:
        storage = Storage.open(services.settings)
        try:
            restorer = Restorer(
                storage,
                directory,
                chosen,
                manifest,
                immutable_types={t.name for t in services.registry if t.immutable_files},
                lock_mode=services.settings.s3.lock_mode,
                workers=workers,
                merge=merge,
                progress=_progress("restore", progress_every),
            )
            if not merge:
                occupied = await anyio.to_thread.run_sync(restorer.occupied)
                if occupied:
                    raise BackupError(
                        f"refusing to restore: {'; '.join(occupied)} (--merge adds to it)"
                    )
            result = await restore_snapshot(restorer, migrator_for(services), services.blobs)
        finally:
            storage.close()
        await services.audit.record(
            "backup.restored",
            OPERATOR,
            details={
                "snapshot": manifest.snapshot,
                "merge": merge,
                "inserted": result.inserted,
                "skipped": result.skipped,
                "problems": len(result.problems),
            },
        )
        inserted = ", ".join(f"{n} {c}" for n, c in sorted(result.inserted.items()))
        click.echo(f"restored snapshot {manifest.snapshot}: {inserted}")
        click.echo(
            f"files: {result.blobs} put ({format_bytes(result.blob_bytes)}), "
            f"{result.locked} write-once files locked"
        )
        skipped = {n: c for n, c in result.skipped.items() if c}
        if skipped:
            click.echo(
                "skipped (already there): " + ", ".join(f"{n} {c}" for n, c in skipped.items())
            )
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
        if result.problems:
            raise click.ClickException(f"restore finished with {len(result.problems)} problems")

    run_with_services(body)
