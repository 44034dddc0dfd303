"""Backfill tally, summary, errors file and the two progress displays."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from mailbox_service.backfill.manifest import ManifestLine
from mailbox_service.backfill.progress import BarProgress, PlainProgress, progress_for
from mailbox_service.backfill.report import (
    ErrorLog,
    LineError,
    LineResult,
    Summary,
    Tally,
    format_duration,
    format_summary,
)

LINE = ManifestLine(7, '{"source_ref": "R7"}', {"source_ref": "R7"})


def tally_of(*outcomes: tuple[str, int], started: float = 100.0) -> Tally:
    tally = Tally(started=started)
    for outcome, size in outcomes:
        error = LineError("bad_file", "file: no such file") if outcome == "failed" else None
        tally.add(LineResult(LINE, outcome, size, error))  # type: ignore[arg-type]
    return tally


def test_tally_counts_outcomes_and_bytes_written() -> None:
    tally = tally_of(("imported", 1000), ("imported", 24), ("skipped", 500), ("failed", 0))
    assert (tally.imported, tally.skipped, tally.failed, tally.done) == (2, 1, 1, 4)
    # Skipped files were not written again: they do not count as bytes.
    assert tally.bytes == 1024


def test_summary_rates_and_text() -> None:
    tally = tally_of(*[("imported", 1048576)] * 8, ("skipped", 5), ("failed", 0))
    summary = Summary.of(tally, now=104.0, errors_file="errs.jsonl")
    assert summary.elapsed_s == 4.0
    assert summary.documents_per_s == 10 / 4
    assert summary.mib_per_s == 2.0
    text = format_summary(summary)
    assert text.splitlines()[0] == "backfill finished"
    assert "  imported  8" in text
    assert "  skipped   1" in text
    assert "  failed    1  (details in errs.jsonl)" in text
    assert "8388608 (8.0 MiB)" in text
    assert "elapsed   4.0 s" in text
    assert "2.5 documents/s, 2.00 MiB/s" in text
    assert summary.to_dict()["documents_per_s"] == 2.5


def test_summary_of_an_empty_run_is_zeros() -> None:
    summary = Summary.of(Tally(started=5.0), now=5.0)
    assert summary.to_dict() | {"errors_file": None} == {
        "imported": 0,
        "skipped": 0,
        "failed": 0,
        "checked": 0,
        "from_checkpoint": 0,
        "bytes": 0,
        "elapsed_s": 0.0,
        "documents_per_s": 0.0,
        "mib_per_s": 0.0,
        "dry_run": False,
        "interrupted": False,
        "aborted": None,
        "errors_file": None,
    }


def test_lines_done_by_a_stopped_run_are_skipped_and_named() -> None:
    tally = Tally(started=0.0)
    tally.add(LineResult(LINE, "skipped", from_checkpoint=True))
    tally.add(LineResult(LINE, "skipped"))
    assert (tally.skipped, tally.from_checkpoint) == (2, 1)
    text = format_summary(Summary.of(tally, now=1.0))
    assert "  skipped   2  (1 done by the stopped run, per its checkpoint)" in text


def test_summary_headline_says_how_the_run_ended() -> None:
    tally = tally_of(("checked", 10))
    assert format_summary(Summary.of(tally, now=101, interrupted=True)).startswith(
        "backfill interrupted: run it again"
    )
    dry = format_summary(Summary.of(tally, now=101, dry_run=True))
    assert dry.startswith("backfill dry run finished: nothing was written")
    assert "  valid     1" in dry
    assert "imported" not in dry
    aborted = Summary.of(tally, now=101, aborted="MinIO is down")
    assert format_summary(aborted).startswith("backfill aborted: MinIO is down")


def test_error_log_writes_one_json_line_per_failure(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    path.write_text("from an earlier run\n")
    log = ErrorLog(path)
    log.write(
        LineResult(LINE, "failed", 0, LineError("invalid_metadata", "attributes.x: bad", "x")),
        manifest="m.jsonl",
    )
    log.close()
    (record,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["line"] == 7
    assert record["source_ref"] == "R7"
    assert record["code"] == "invalid_metadata"
    assert record["field"] == "x"
    assert record["reason"] == "attributes.x: bad"
    assert record["original"] == '{"source_ref": "R7"}'
    assert record["manifest"] == "m.jsonl"
    assert record["at"].endswith("Z")


def test_a_clean_run_leaves_no_errors_file(tmp_path: Path) -> None:
    path = tmp_path / "errors.jsonl"
    path.write_text("stale failures of an earlier run\n")
    log = ErrorLog(path)
    log.close()
    assert not path.exists()
    assert log.count == 0


def test_plain_progress_prints_a_line_every_interval() -> None:
    out = io.StringIO()
    now = [100.0]
    progress = PlainProgress(200, interval=5, out=out, clock=lambda: now[0])
    tally = Tally(started=100.0)
    progress.start()
    for second in range(1, 13):
        now[0] = 100.0 + second
        tally.add(LineResult(LINE, "imported", 1024 * 1024))
        tally.add(LineResult(LINE, "skipped", 10))
        progress.update(tally)
    progress.stop(tally)
    lines = out.getvalue().splitlines()
    assert lines[0] == "backfill: importing 200 lines"
    # Seconds 5 and 10, then the final line.
    assert len(lines) == 4
    assert lines[1] == (
        "backfill: 10/200 (5.0%) new 5 skipped 5 failed 0, 2.0 docs/s, 1.0 MiB/s, "
        "elapsed 5s, ETA 1m35s"
    )
    assert lines[-1].startswith("backfill: 24/200 (12.0%) new 12 skipped 12")


def test_bar_progress_shows_count_rate_eta_and_outcomes() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    progress = BarProgress(50, console=console)
    tally = Tally()
    progress.start()
    for _ in range(20):
        tally.add(LineResult(LINE, "imported", 10))
        progress.update(tally)
    progress.stop(tally)
    text = out.getvalue()
    assert "20/50" in text
    assert "docs/s" in text
    assert "ETA" in text
    assert "new 20 skipped 0 failed 0" in text


def test_progress_is_plain_when_not_on_a_terminal() -> None:
    assert isinstance(
        progress_for(3, dry_run=False, interval=1, stream=io.StringIO()), PlainProgress
    )


def test_durations_read_naturally() -> None:
    assert format_duration(0.4) == "0s"
    assert format_duration(59.6) == "1m00s"
    assert format_duration(3 * 3600 + 61) == "3h01m01s"
