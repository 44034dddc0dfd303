"""What a backfill run did: per-line results, the running tally, the summary, the errors file.

The errors file is JSON Lines, one failed manifest line each, flushed as it happens so that it
is complete up to the last finished line even after `kill -9`. Each record keeps the original
line, so fixing the failures and feeding them again is `jq -r .original` plus an edit.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from mailbox_service.backfill.manifest import ManifestLine

Outcome = Literal["imported", "skipped", "failed", "checked"]


@dataclass(frozen=True)
class LineError:
    """Why one line failed: a stable `code`, a message for the operator, the field at fault."""

    code: str
    reason: str
    field: str | None = None


@dataclass(frozen=True)
class LineResult:
    line: ManifestLine
    outcome: Outcome
    size: int = 0
    """Bytes of the line's file (0 when it was never read)."""
    error: LineError | None = None
    from_checkpoint: bool = False
    """Skipped because an earlier, stopped run of this manifest had finished it."""


@dataclass
class Tally:
    """Running counts; the progress display and the summary read it."""

    started: float = field(default_factory=time.monotonic)
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    checked: int = 0
    from_checkpoint: int = 0
    bytes: int = 0
    """Bytes written (imported files), or bytes checked in a dry run."""

    def add(self, result: LineResult) -> None:
        if result.outcome == "imported":
            self.imported += 1
            self.bytes += result.size
        elif result.outcome == "skipped":
            self.skipped += 1
            self.from_checkpoint += result.from_checkpoint
        elif result.outcome == "checked":
            self.checked += 1
            self.bytes += result.size
        else:
            self.failed += 1

    @property
    def done(self) -> int:
        return self.imported + self.skipped + self.failed + self.checked


@dataclass(frozen=True)
class Summary:
    imported: int
    skipped: int
    failed: int
    checked: int
    bytes: int
    elapsed_s: float
    from_checkpoint: int = 0
    dry_run: bool = False
    interrupted: bool = False
    aborted: str | None = None
    """Why the run stopped early on its own (backing services failing), if it did."""
    errors_file: str | None = None

    @classmethod
    def of(cls, tally: Tally, *, now: float | None = None, **flags: Any) -> Summary:
        elapsed = (time.monotonic() if now is None else now) - tally.started
        return cls(
            imported=tally.imported,
            skipped=tally.skipped,
            failed=tally.failed,
            checked=tally.checked,
            bytes=tally.bytes,
            elapsed_s=max(elapsed, 0.0),
            from_checkpoint=tally.from_checkpoint,
            **flags,
        )

    @property
    def documents(self) -> int:
        return self.imported + self.skipped + self.failed + self.checked

    @property
    def documents_per_s(self) -> float:
        """Lines handled per second, whatever their outcome: what the operator waits for."""
        return self.documents / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.bytes / 1048576 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "checked": self.checked,
            "from_checkpoint": self.from_checkpoint,
            "bytes": self.bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            "documents_per_s": round(self.documents_per_s, 2),
            "mib_per_s": round(self.mib_per_s, 2),
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "errors_file": self.errors_file,
        }


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_summary(summary: Summary) -> str:
    """The human summary printed at the end of every run (also after Ctrl-C)."""
    if summary.interrupted:
        head = "backfill interrupted: run it again to carry on"
    elif summary.aborted:
        head = f"backfill aborted: {summary.aborted}"
    elif summary.dry_run:
        head = "backfill dry run finished: nothing was written"
    else:
        head = "backfill finished"
    rows = []
    if summary.dry_run:
        rows.append(("valid", str(summary.checked)))
    else:
        skipped = str(summary.skipped)
        if summary.from_checkpoint:
            skipped += f"  ({summary.from_checkpoint} done by the stopped run, per its checkpoint)"
        rows += [("imported", str(summary.imported)), ("skipped", skipped)]
    failed = str(summary.failed)
    if summary.failed and summary.errors_file:
        failed += f"  (details in {summary.errors_file})"
    rows += [
        ("failed", failed),
        ("bytes", f"{summary.bytes} ({format_bytes(summary.bytes)})"),
        ("elapsed", f"{summary.elapsed_s:.1f} s"),
        ("rate", f"{summary.documents_per_s:.1f} documents/s, {summary.mib_per_s:.2f} MiB/s"),
    ]
    return "\n".join([head, *(f"  {name:<9} {value}" for name, value in rows)])


class ErrorLog:
    """The `--errors` JSON Lines file, one record per failed line of this run.

    A file left by an earlier run is removed at the start (it no longer describes the data),
    and the new one is only created when a line fails, so a clean run leaves none behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self.count = 0
        path.unlink(missing_ok=True)

    def write(self, result: LineResult, *, manifest: str) -> None:
        assert result.error is not None
        record = {
            "line": result.line.number,
            "source_ref": result.line.source_ref,
            "code": result.error.code,
            "field": result.error.field,
            "reason": result.error.reason,
            "manifest": manifest,
            "original": result.line.original,
            "at": dt.datetime.now(dt.UTC),
        }
        if self._fh is None:
            self._fh = self.path.open("wb")
        self._fh.write(msgspec.json.encode(record) + b"\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
