"""The concurrent loop of the backfill: batching, bounded work in flight, stop and abort."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from mailbox_service.backfill.manifest import ManifestLine
from mailbox_service.backfill.report import LineResult
from mailbox_service.backfill.runner import BackfillOptions, drive


def numbered(count: int, seen: list[int] | None = None) -> Iterator[ManifestLine]:
    """Lines 1..count; records in `seen` when each is read, to prove reading is lazy."""
    for number in range(1, count + 1):
        if seen is not None:
            seen.append(number)
        yield ManifestLine(number, "{}", {})


class Handler:
    """Records batches and how many were in flight at once."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled = 0

    async def __call__(self, lines: list[ManifestLine]) -> list[LineResult]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.batches.append([line.number for line in lines])
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        return [LineResult(line, "imported", 1) for line in lines]


async def test_every_line_is_handled_once_in_batches_with_bounded_parallelism() -> None:
    handler = Handler()
    results: list[LineResult] = []
    await drive(
        numbered(23),
        handler,
        batch_size=5,
        parallel=2,
        on_result=results.append,
        stop=asyncio.Event(),
    )
    assert sorted(r.line.number for r in results) == list(range(1, 24))
    assert sorted(len(b) for b in handler.batches) == [3, 5, 5, 5, 5]
    assert handler.most_in_flight == 2


async def test_lines_are_read_only_as_fast_as_they_are_handled() -> None:
    seen: list[int] = []
    handler = Handler(delay=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(
        drive(
            numbered(1000, seen),
            handler,
            batch_size=4,
            parallel=2,
            on_result=lambda _: None,
            stop=stop,
        )
    )
    await asyncio.sleep(0.02)
    # Two batches of four taken; the rest of the manifest is not read yet.
    assert len(seen) <= 8
    stop.set()
    await task


async def test_stop_finishes_the_batches_in_flight_and_starts_no_more() -> None:
    handler = Handler(delay=0.05)
    stop = asyncio.Event()
    results: list[LineResult] = []

    def on_result(result: LineResult) -> None:
        results.append(result)
        stop.set()  # as Ctrl-C would, right after the first line finished

    await drive(numbered(100), handler, batch_size=3, parallel=2, on_result=on_result, stop=stop)
    # Both batches that were in flight completed in full; nothing else was started.
    assert len(handler.batches) == 2
    assert len(results) == 6
    assert handler.cancelled == 0


async def test_abort_cancels_the_batches_in_flight() -> None:
    handler = Handler(delay=10)
    stop, abort = asyncio.Event(), asyncio.Event()
    results: list[LineResult] = []
    task = asyncio.create_task(
        drive(
            numbered(10),
            handler,
            batch_size=2,
            parallel=2,
            on_result=results.append,
            stop=stop,
            abort=abort,
        )
    )
    await asyncio.sleep(0.05)
    stop.set()
    abort.set()
    await asyncio.wait_for(task, timeout=2)
    assert handler.cancelled == 2
    assert results == []


def test_batches_follow_concurrency_unless_given() -> None:
    def options(**kw: int) -> BackfillOptions:
        return BackfillOptions(Path("m"), Path("/"), max_bytes=1, **kw)  # type: ignore[arg-type]

    assert options(concurrency=1).batch == 8
    assert options(concurrency=1).batches_in_flight == 1
    assert options(concurrency=4).batch == 32
    assert options(concurrency=32).batch == 64
    assert options(concurrency=8).batches_in_flight == 2
    assert options(concurrency=8, batch_size=3).batch == 3
