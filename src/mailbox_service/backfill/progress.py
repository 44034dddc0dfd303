"""How far a backfill got: a live bar on a terminal, a plain line every few seconds otherwise.

CI logs and `nohup` files get no escape codes and no per-document noise, only a line with the
same figures at a fixed interval. Both displays read the runner's `Tally`; neither keeps any
per-line state, so memory stays flat however long the manifest is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mailbox_service.backfill.report import Tally, format_bytes, format_duration


class ProgressDisplay(Protocol):
    def start(self) -> None: ...

    def update(self, tally: Tally) -> None: ...

    def stop(self, tally: Tally) -> None: ...


def _counts(tally: Tally, dry_run: bool) -> str:
    if dry_run:
        return f"valid {tally.checked} failed {tally.failed}"
    return f"new {tally.imported} skipped {tally.skipped} failed {tally.failed}"


class _RateColumn(ProgressColumn):
    """Documents per second, from rich's moving window of recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- docs/s" if speed is None else f"{speed:,.1f} docs/s", style="cyan")


class BarProgress:
    """A rich progress bar: count, rate, ETA and the outcome counts."""

    def __init__(
        self,
        total: int,
        *,
        dry_run: bool = False,
        console: Console | None = None,
        label: str | None = None,
    ):
        self.total = total
        self.dry_run = dry_run
        self.label = label
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console or Console(stderr=True),
            # A few refreshes per second is plenty; redrawing per document would cost CPU.
            refresh_per_second=4,
            speed_estimate_period=15,
        )
        self._task: TaskID | None = None

    def start(self) -> None:
        self._progress.start()
        label = self.label or ("check" if self.dry_run else "import")
        self._task = self._progress.add_task(label, total=self.total, counts="")

    def update(self, tally: Tally) -> None:
        if self._task is not None:
            self._progress.update(
                self._task, completed=tally.done, counts=_counts(tally, self.dry_run)
            )

    def stop(self, tally: Tally) -> None:
        self.update(tally)
        self._progress.stop()


class PlainProgress:
    """One line every `interval` seconds, for logs that are not a terminal.

    `label` starts every line (other long commands, e.g. `backup`, reuse this display).
    """

    def __init__(
        self,
        total: int,
        *,
        interval: float = 5.0,
        dry_run: bool = False,
        out: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "backfill",
        unit: str = "lines",
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.interval = interval
        self.dry_run = dry_run
        self._out = out or sys.stderr
        self._clock = clock
        self._last = 0.0

    def start(self) -> None:
        self._last = self._clock()
        verb = "checking" if self.dry_run else "importing"
        self._write(f"{self.label}: {verb} {self.total} {self.unit}")

    def update(self, tally: Tally) -> None:
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            self._write(self.line(tally, now))

    def stop(self, tally: Tally) -> None:
        self._write(self.line(tally, self._clock()))

    def line(self, tally: Tally, now: float) -> str:
        elapsed = max(now - tally.started, 1e-9)
        rate = tally.done / elapsed
        share = f" ({tally.done / self.total:.1%})" if self.total else ""
        remaining = max(self.total - tally.done, 0)
        eta = format_duration(remaining / rate) if rate > 0 else "?"
        return (
            f"{self.label}: {tally.done}/{self.total}{share} {_counts(tally, self.dry_run)}, "
            f"{rate:.1f} docs/s, {format_bytes(tally.bytes / elapsed)}/s, "
            f"elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def _write(self, text: str) -> None:
        print(text, file=self._out, flush=True)


def progress_for(
    total: int,
    *,
    dry_run: bool,
    interval: float,
    stream: IO[str] | None = None,
    label: str = "backfill",
    unit: str = "lines",
) -> ProgressDisplay:
    """The bar on a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        bar_label = None if label == "backfill" else label
        return BarProgress(total, dry_run=dry_run, console=Console(file=stream), label=bar_label)
    return PlainProgress(
        total, interval=interval, dry_run=dry_run, out=stream, label=label, unit=unit
    )
