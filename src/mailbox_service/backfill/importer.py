"""One batch of manifest lines → one result per line, through the ingest service.

Per line: parse the metadata, find the file below the base directory, read it through the same
hashing/sniffing/size checks as an upload (`receive_path`). Then the lines read so far go to
`IngestService.accept_many` with `origin="backfill"` (or `IngestService.check` per line in a
dry run). Nothing here validates, stores or deduplicates on its own: that is the service's job,
so both doors behave alike; batching only saves round trips.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from mailbox_service.backfill.checkpoint import Resume
from mailbox_service.backfill.manifest import (
    FILE_FIELD,
    FileRefused,
    ManifestLine,
    resolve_file,
    type_textual_attributes,
)
from mailbox_service.backfill.options import BackfillOptions
from mailbox_service.backfill.report import LineError, LineResult, Outcome
from mailbox_service.errors import DependencyUnavailable, MailboxError
from mailbox_service.ingestion.schemas import DocumentMetadata, convert_metadata
from mailbox_service.ingestion.service import IngestOutcome, IngestService
from mailbox_service.ingestion.upload import IncomingFile, receive_path
from mailbox_service.log import get_logger

log = get_logger(__name__)

TRANSIENT_ATTEMPTS = 3
"""Tries per line when a backing service fails; replays are safe, the service is idempotent."""
TRANSIENT_BACKOFF_S = 0.5
"""First pause between tries; doubles per try."""
GROUP_BYTES = 64 * 1024 * 1024
"""Bytes of read files after which a batch goes to the service early (bounds memory spools
and temporary disk when files are large)."""

DEPENDENCY_ERROR = "dependency_unavailable"


def _code_of(exc: MailboxError) -> str:
    """`InvalidMetadata` → `invalid_metadata`: a stable code for scripts reading the errors."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _failed(
    line: ManifestLine, code: str, reason: str, field: str | None, size: int = 0
) -> LineResult:
    return LineResult(line, "failed", size, LineError(code, reason, field))


def _open_file(base_dir: Path, relative: object, max_bytes: int) -> IncomingFile:
    """Blocking (run in a thread): find the line's file and read it like an upload."""
    path = resolve_file(base_dir, relative)
    return receive_path(path, max_bytes, path.name)


@dataclass
class _Ready:
    """A line whose metadata parsed and whose file was read: ready for the service."""

    index: int
    line: ManifestLine
    metadata: DocumentMetadata
    file: IncomingFile


class BatchImporter:
    """Turns a batch of manifest lines into one `LineResult` each, through the ingest service.

    Files are read in parallel (at most `concurrency` at once), then the batch goes to
    `IngestService.accept_many` (or `check` per line in a dry run). Lines whose backing
    service failed are retried with backoff; everything else is final.
    """

    def __init__(
        self, ingest: IngestService, options: BackfillOptions, resume: Resume | None = None
    ) -> None:
        self.ingest = ingest
        self.options = options
        self.resume = resume
        self.uploads = anyio.CapacityLimiter(options.concurrency)
        self.reads = anyio.CapacityLimiter(options.concurrency)
        # Look references up before uploading while replays are being met (a rerun or the
        # done part of a resumed run); insert first, letting the unique index find the rare
        # replay, once they stop. Either way the outcome is the same, only the cost differs.
        self.look_up_first = True

    async def __call__(self, lines: list[ManifestLine]) -> list[LineResult]:
        results: dict[int, LineResult] = {}
        group: list[_Ready] = []
        window = self.options.concurrency
        try:
            # Read `concurrency` files at a time; hand what was read to the service whenever
            # it reaches GROUP_BYTES, so large files never pile up a whole batch on disk.
            for start in range(0, len(lines), window):
                async with anyio.create_task_group() as tg:
                    for index in range(start, min(start + window, len(lines))):
                        tg.start_soon(self._prepare_into, index, lines[index], results, group)
                if sum(item.file.size for item in group) >= GROUP_BYTES:
                    await self._settle(group, results)
            await self._settle(group, results)
        finally:
            for item in group:
                item.file.close()
        return [results[index] for index in range(len(lines))]

    async def _prepare_into(
        self,
        index: int,
        line: ManifestLine,
        results: dict[int, LineResult],
        group: list[_Ready],
    ) -> None:
        outcome = await self._prepare(index, line)
        if isinstance(outcome, LineResult):
            results[index] = outcome
        else:
            group.append(outcome)

    async def _settle(self, group: list[_Ready], results: dict[int, LineResult]) -> None:
        """Check or import the lines read so far, then let go of their files."""
        if not group:
            return
        group.sort(key=lambda item: item.index)
        try:
            if self.options.dry_run:
                self._check(group, results)
            else:
                await self._import(group, results)
        finally:
            for item in group:
                item.file.close()
            group.clear()

    async def _prepare(self, index: int, line: ManifestLine) -> _Ready | LineResult:
        if self.resume is not None and self.resume.covers(line):
            return LineResult(line, "skipped", from_checkpoint=True)
        if line.document is None:
            return _failed(line, "bad_line", line.error or "unreadable line", "line")
        document = dict(line.document)
        relative = document.pop(FILE_FIELD, None)
        if line.textual:
            document = type_textual_attributes(document, self.ingest.registry)
        try:
            metadata = convert_metadata(document)
        except MailboxError as exc:
            return _failed(line, _code_of(exc), exc.message, exc.field)
        try:
            async with self.reads:
                file = await anyio.to_thread.run_sync(
                    _open_file, self.options.base_dir, relative, self.options.max_bytes
                )
        except FileRefused as exc:
            return _failed(line, "bad_file", f"file: {exc}", FILE_FIELD)
        except OSError as exc:
            return _failed(line, "bad_file", f"file: cannot read {relative}: {exc}", FILE_FIELD)
        except MailboxError as exc:  # too large
            return _failed(line, _code_of(exc), exc.message, exc.field)
        return _Ready(index, line, metadata, file)

    def _check(self, ready: list[_Ready], results: dict[int, LineResult]) -> None:
        for item in ready:
            try:
                self.ingest.check(item.metadata, item.file)
            except MailboxError as exc:
                results[item.index] = _failed(
                    item.line, _code_of(exc), exc.message, exc.field, item.file.size
                )
            else:
                results[item.index] = LineResult(item.line, "checked", item.file.size)

    async def _import(self, ready: list[_Ready], results: dict[int, LineResult]) -> None:
        pending = ready
        delay = TRANSIENT_BACKOFF_S
        replays = 0
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            outcomes = await self._accept_many(pending)
            retry: list[_Ready] = []
            for item, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, IngestOutcome):
                    replays += not outcome.created
                    verdict: Outcome = "imported" if outcome.created else "skipped"
                    results[item.index] = LineResult(item.line, verdict, item.file.size)
                elif isinstance(outcome, DependencyUnavailable) and attempt < TRANSIENT_ATTEMPTS:
                    retry.append(item)
                elif isinstance(outcome, DependencyUnavailable):
                    reason = f"gave up after {attempt} tries: {outcome.message}"
                    results[item.index] = _failed(
                        item.line, DEPENDENCY_ERROR, reason, None, item.file.size
                    )
                else:
                    results[item.index] = _failed(
                        item.line,
                        _code_of(outcome),
                        outcome.message,
                        outcome.field,
                        item.file.size,
                    )
            if not retry:
                break
            log.warning(
                "backfill.retry",
                lines=[item.line.number for item in retry],
                attempt=attempt,
                error=next(
                    (o.message for o in outcomes if isinstance(o, DependencyUnavailable)), ""
                ),
            )
            await asyncio.sleep(delay)
            delay *= 2
            pending = retry
        self.look_up_first = replays > 0

    async def _accept_many(self, pending: list[_Ready]) -> list[IngestOutcome | MailboxError]:
        try:
            return await self.ingest.accept_many(
                [(item.metadata, item.file) for item in pending],
                source=self.options.source,
                origin="backfill",
                # False overrides each line's own `notify`; None lets the line decide.
                notify=None if self.options.notify else False,
                look_up_first=self.look_up_first,
                uploads=self.uploads,
            )
        except MailboxError as exc:
            if not isinstance(exc, DependencyUnavailable):
                raise
            return [exc] * len(pending)
        except Exception as exc:  # the lookup or account read failed: nothing was written
            error = DependencyUnavailable(f"{type(exc).__name__}: {exc}")
            return [error] * len(pending)
