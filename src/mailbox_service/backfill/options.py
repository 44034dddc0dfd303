"""What a backfill run is asked to do (the CLI's options, as data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_BATCH = 64
"""Largest default batch: enough to make lookups and inserts cheap per document."""


@dataclass(frozen=True)
class BackfillOptions:
    manifest: Path
    base_dir: Path
    """Resolved directory every `file` path is relative to."""
    max_bytes: int
    """Largest accepted file (the same limit as an upload)."""
    source: str = "backfill"
    concurrency: int = 8
    """Files uploaded at once; files are read by one thread per core, at most this many."""
    batch_size: int | None = None
    """Lines per `accept_many` call (one lookup, one insert); default min(64, 8 x concurrency)."""
    notify: bool = False
    """Queue notifications as the line's `notify` says; without it, none are sent."""
    dry_run: bool = False
    limit: int | None = None

    @property
    def batch(self) -> int:
        return self.batch_size or min(MAX_BATCH, 8 * self.concurrency)

    @property
    def batches_in_flight(self) -> int:
        """Two, so one batch uploads while the other waits for MongoDB; one when the operator
        asked for strictly one document at a time."""
        return 1 if self.concurrency == 1 else 2
