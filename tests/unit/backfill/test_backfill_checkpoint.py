"""The resume checkpoint: the finished prefix of a manifest, saved atomically, tied to it."""

from __future__ import annotations

from pathlib import Path

from mailbox_service.backfill.checkpoint import Checkpoint, LineTracker, Resume, identity_of
from mailbox_service.backfill.manifest import ManifestLine


def line(number: int) -> ManifestLine:
    return ManifestLine(number, "{}", {})


def test_tracker_advances_over_the_finished_prefix_only() -> None:
    tracker = LineTracker()
    handed_out = list(tracker.track([line(n) for n in (1, 2, 4, 7, 8)]))
    assert [x.number for x in handed_out] == [1, 2, 4, 7, 8]
    tracker.finish(2, failed=False)
    assert tracker.through_line == 0  # line 1 is still in flight
    tracker.finish(4, failed=True)
    tracker.finish(1, failed=False)
    assert tracker.through_line == 4  # numbers need not be contiguous (blank lines)
    tracker.finish(8, failed=True)
    assert tracker.through_line == 4
    # Only failures inside the finished prefix are recorded for the next run.
    assert tracker.failed == [4]
    tracker.finish(7, failed=False)
    assert tracker.through_line == 8
    assert tracker.failed == [4, 8]


def test_lines_are_only_handed_out_as_they_are_consumed() -> None:
    tracker = LineTracker()
    stream = tracker.track(line(n) for n in range(1, 100))
    next(stream)
    tracker.finish(1, failed=False)
    assert tracker.through_line == 1
    tracker.finish(2, failed=False)  # not handed out yet: does not count
    assert tracker.through_line == 1


def test_saved_progress_is_loaded_only_for_the_same_manifest_and_source(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"a": 1}\n')
    identity = identity_of(manifest, source="erp", base_dir=tmp_path)
    path = tmp_path / "m.checkpoint.json"
    tracker = LineTracker()
    list(tracker.track([line(1), line(2), line(3)]))
    for number in (1, 2, 3):
        tracker.finish(number, failed=number == 2)
    Checkpoint(path, identity).save(tracker)
    assert not list(tmp_path.glob(".*.tmp"))

    resume = Checkpoint(path, identity).load()
    assert resume == Resume(3, frozenset({2}))
    assert resume.covers(line(1))
    assert not resume.covers(line(2))  # failed before: tried again
    assert not resume.covers(line(4))

    other_source = identity_of(manifest, source="crm", base_dir=tmp_path)
    assert Checkpoint(path, other_source).load() is None
    manifest.write_text('{"a": 1}\n{"b": 2}\n')  # edited since: the checkpoint is stale
    assert Checkpoint(path, identity_of(manifest, source="erp", base_dir=tmp_path)).load() is None


def test_a_missing_or_damaged_checkpoint_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert Checkpoint(path, {}).load() is None
    path.write_text("{not json")
    assert Checkpoint(path, {}).load() is None
    path.write_text('{"version": 1}')
    assert Checkpoint(path, {}).load() is None
    Checkpoint(path, {}).remove()
    assert not path.exists()
    Checkpoint(path, {}).remove()  # twice is fine


def test_saves_are_spaced_by_the_interval(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "c.json"
    checkpoint = Checkpoint(path, {}, interval=1.0, clock=lambda: now[0])
    tracker = LineTracker()
    list(tracker.track([line(1), line(2)]))
    tracker.finish(1, failed=False)
    now[0] = 0.5
    checkpoint.maybe_save(tracker)
    assert not path.exists()
    now[0] = 1.0
    checkpoint.maybe_save(tracker)
    assert Checkpoint(path, {}).load() == Resume(1, frozenset())
    tracker.finish(2, failed=False)
    now[0] = 1.5
    checkpoint.maybe_save(tracker)
    assert Checkpoint(path, {}).load() == Resume(1, frozenset())
