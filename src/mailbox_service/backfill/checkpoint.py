"""A checkpoint so that a stopped backfill resumes quickly; correctness never depends on it.

While a run goes on, the checkpoint file records the line up to which every line has finished
(lines finish out of order, two batches are in flight) and which of those lines failed. A
later run of the same manifest (same file size and modification time, same source and base
directory) counts the finished lines as skipped without asking the database, and retries the
failed ones. Everything after the recorded line goes through the ingest service as usual, and
the service's idempotency makes the few lines finished after the last save come back
`skipped`, so a checkpoint that is a little behind is harmless.

The file is replaced atomically at most once a `interval` and removed when a run completes:
it only exists for runs that were stopped (Ctrl-C, SIGTERM, kill -9, a crash).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from mailbox_service.backfill.manifest import ManifestLine

VERSION = 1


class _State(msgspec.Struct, frozen=True):
    version: int
    identity: dict[str, Any]
    through_line: int
    failed: list[int] = []


@dataclass(frozen=True)
class Resume:
    """What an earlier run of the same manifest finished."""

    through_line: int
    failed: frozenset[int]

    def covers(self, line: ManifestLine) -> bool:
        """True for a line that finished earlier and did not fail."""
        return line.number <= self.through_line and line.number not in self.failed


@dataclass
class LineTracker:
    """The highest line number such that it and every line before it has finished."""

    through_line: int = 0
    _issued: deque[int] = field(default_factory=deque)
    _finished: set[int] = field(default_factory=set)
    _failed: list[int] = field(default_factory=list)

    def track(self, lines: Iterable[ManifestLine]) -> Iterator[ManifestLine]:
        """Pass `lines` through, noting each as handed out, in manifest order."""
        for line in lines:
            self._issued.append(line.number)
            yield line

    def finish(self, number: int, *, failed: bool) -> None:
        if failed:
            self._failed.append(number)
        self._finished.add(number)
        while self._issued and self._issued[0] in self._finished:
            first = self._issued.popleft()
            self._finished.discard(first)
            self.through_line = first

    @property
    def failed(self) -> list[int]:
        return sorted(n for n in self._failed if n <= self.through_line)


def identity_of(manifest: Path, *, source: str, base_dir: Path) -> dict[str, Any]:
    """What makes a checkpoint belong to a run: the very same manifest, source and files."""
    stat = manifest.stat()
    return {
        "manifest": str(manifest.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "source": source,
        "base_dir": str(base_dir),
    }


class Checkpoint:
    def __init__(
        self,
        path: Path,
        identity: dict[str, Any],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.identity = identity
        self.interval = interval
        self._clock = clock
        self._saved_at = clock()

    def load(self) -> Resume | None:
        """The earlier run's progress, or None when there is none or it is for other data."""
        try:
            state = msgspec.json.decode(self.path.read_bytes(), type=_State)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return None
        if state.version != VERSION or state.identity != self.identity:
            return None
        return Resume(state.through_line, frozenset(state.failed))

    def maybe_save(self, tracker: LineTracker) -> None:
        if self._clock() - self._saved_at >= self.interval:
            self.save(tracker)

    def save(self, tracker: LineTracker) -> None:
        state = _State(VERSION, self.identity, tracker.through_line, tracker.failed)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_bytes(msgspec.json.encode(state))
        os.replace(temporary, self.path)
        self._saved_at = self._clock()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
