"""The backfill loop: manifest lines → the same `IngestService` the HTTP endpoint uses.

Lines are read from the manifest in batches; importer.py turns each batch into results through
the ingest service (one lookup, one account read, one insert_many per batch).

Resuming is correct without any state of its own: (source, source_ref) is unique and an
identical replay comes back with `created=False`, so a rerun skips what an earlier (even
killed) run stored. The checkpoint (checkpoint.py) only makes a resume quicker.

Workers pull batches from one shared iterator, so at most `batches_in_flight x batch` lines
are in flight and the manifest is never held in memory. Setting `stop` lets the batches in
flight finish and starts no new ones (Ctrl-C); setting `abort` cancels them (second Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pymongo.errors import PyMongoError

from mailbox_service.backfill.checkpoint import Checkpoint, LineTracker
from mailbox_service.backfill.importer import DEPENDENCY_ERROR, BatchImporter
from mailbox_service.backfill.manifest import ManifestLine, read_manifest
from mailbox_service.backfill.options import BackfillOptions
from mailbox_service.backfill.progress import ProgressDisplay
from mailbox_service.backfill.report import ErrorLog, LineResult, Summary, Tally
from mailbox_service.errors import ConfigurationError, DependencyUnavailable
from mailbox_service.ingestion.service import IngestService

__all__ = ["BackfillOptions", "drive", "preflight", "run_backfill", "stop_on_signals"]


async def drive(
    lines: Iterable[ManifestLine],
    handle: Callable[[list[ManifestLine]], Awaitable[list[LineResult]]],
    *,
    batch_size: int,
    parallel: int,
    on_result: Callable[[LineResult], None],
    stop: asyncio.Event,
    abort: asyncio.Event | None = None,
) -> None:
    """Run `handle` over `lines` in batches, `parallel` batches at a time.

    Workers share one iterator, so lines are read only as fast as they are handled. `stop`
    starts no new batch; `abort` cancels the batches in flight as well.
    """
    iterator: Iterator[ManifestLine] = iter(lines)

    async def worker() -> None:
        while not stop.is_set():
            batch = list(itertools.islice(iterator, batch_size))
            if not batch:
                return
            for result in await handle(batch):
                on_result(result)

    workers = [asyncio.create_task(worker()) for _ in range(parallel)]
    everything = asyncio.gather(*workers)
    if abort is None:
        await everything
        return
    aborted = asyncio.create_task(abort.wait())
    try:
        waiters: set[asyncio.Future[Any]] = {everything, aborted}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        aborted.cancel()
        if not everything.done():
            everything.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await everything


async def preflight(ingest: IngestService) -> None:
    """Fail before the first line when MongoDB or MinIO is unreachable or not migrated.

    The unique index on `source_key` (source and source_ref in one field) is what makes
    concurrent lines with one reference, and reruns, safe; without it a backfill could store
    duplicates, and before migration 0004 stored documents have no key to be found by.
    """
    try:
        keyed = await ingest.documents.has_unique_source_key()
    except PyMongoError as exc:
        raise DependencyUnavailable(f"mongodb: {type(exc).__name__}: {exc}") from exc
    if not keyed:
        raise ConfigurationError(
            "documents has no unique source_key index (the (source, source_ref) idempotency "
            "key): run `mailbox-service migrate`"
        )
    await ingest.blobs.check()


@dataclass
class _Watchdog:
    """Stops the run when every recent line failed because a backing service is down,
    instead of writing the rest of the manifest into the errors file."""

    limit: int
    stop: asyncio.Event
    streak: int = 0
    reason: str | None = None

    def see(self, result: LineResult) -> None:
        if result.error is not None and result.error.code == DEPENDENCY_ERROR:
            self.streak += 1
            if self.streak >= self.limit and self.reason is None:
                self.reason = (
                    f"{self.streak} lines in a row failed because a backing service did not "
                    f"answer (last: {result.error.reason})"
                )
                self.stop.set()
        else:
            self.streak = 0


async def run_backfill(
    ingest: IngestService,
    options: BackfillOptions,
    *,
    errors: ErrorLog | None = None,
    progress: ProgressDisplay | None = None,
    stop: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
    lines: Iterable[ManifestLine] | None = None,
    checkpoint: Checkpoint | None = None,
) -> Summary:
    """Import (or check) every line of the manifest; the summary says what happened.

    With a `checkpoint` (never in a dry run) lines an earlier stopped run finished are counted
    as skipped without a lookup, and progress is saved for the next run.
    """
    stop = stop or asyncio.Event()
    if not options.dry_run:
        await preflight(ingest)
    source = lines if lines is not None else read_manifest(options.manifest)
    if options.limit is not None:
        source = itertools.islice(source, options.limit)
    if options.dry_run:
        checkpoint = None
    resume = checkpoint.load() if checkpoint is not None else None
    tracker = LineTracker()
    source = tracker.track(source)
    # Reads and uploads each run in threads, up to `concurrency` of each at once.
    threads = anyio.to_thread.current_default_thread_limiter()
    threads.total_tokens = max(threads.total_tokens, 2 * options.concurrency + 4)
    tally = Tally()
    watchdog = _Watchdog(limit=max(10, 2 * options.concurrency), stop=stop)
    manifest_name = str(options.manifest)

    def on_result(result: LineResult) -> None:
        tally.add(result)
        watchdog.see(result)
        if result.error is not None and errors is not None:
            errors.write(result, manifest=manifest_name)
        tracker.finish(result.line.number, failed=result.error is not None)
        if checkpoint is not None:
            checkpoint.maybe_save(tracker)
        if progress is not None:
            progress.update(tally)

    if progress is not None:
        progress.start()
    completed = False
    try:
        await drive(
            source,
            BatchImporter(ingest, options, resume),
            batch_size=options.batch,
            parallel=options.batches_in_flight,
            on_result=on_result,
            stop=stop,
            abort=abort,
        )
        completed = not stop.is_set()
    finally:
        if progress is not None:
            progress.stop(tally)
        if checkpoint is not None:
            # Kept (and brought up to date) only for a run that has more to do.
            if completed:
                checkpoint.remove()
            else:
                checkpoint.save(tracker)
    interrupted = stop.is_set() and watchdog.reason is None
    return Summary.of(
        tally,
        dry_run=options.dry_run,
        interrupted=interrupted,
        aborted=watchdog.reason,
        errors_file=str(errors.path) if errors is not None and errors.count else None,
    )


@contextlib.contextmanager
def stop_on_signals(
    stop: asyncio.Event,
    abort: asyncio.Event,
    on_first: Callable[[], None] | None = None,
) -> Iterator[None]:
    """First SIGINT/SIGTERM: finish what is in flight, then stop. Second: cancel it too."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def handle() -> None:
        if stop.is_set():
            abort.set()
            return
        stop.set()
        if on_first is not None:
            on_first()

    for signum in signals:
        loop.add_signal_handler(signum, handle)
    try:
        yield
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
