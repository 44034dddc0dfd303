"""How the backfill reads a batch's files: a few threads, a bounded group, errors per line."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app_fixtures import invoice_metadata, sample_pdf
from mailbox_service.backfill import importer
from mailbox_service.backfill.importer import _Parsed, _Reading, _Ready
from mailbox_service.backfill.manifest import ArchiveFiles, ManifestLine
from mailbox_service.ingestion.schemas import convert_metadata

PDF = sample_pdf(padding=10_000)


def parsed_lines(names: list[str]) -> list[_Parsed]:
    metadata = convert_metadata(invoice_metadata("acct-reading"))
    return [
        _Parsed(index, ManifestLine(index + 1, "{}", {}), metadata, name)
        for index, name in enumerate(names)
    ]


def write_files(base: Path, count: int) -> list[str]:
    for number in range(count):
        (base / f"{number}.pdf").write_bytes(PDF)
    return [f"{number}.pdf" for number in range(count)]


def test_every_file_is_read_once_by_several_threads(tmp_path: Path) -> None:
    reading = _Reading(parsed_lines(write_files(tmp_path, 40)), ArchiveFiles(tmp_path), 10**7)
    threads = [threading.Thread(target=reading.read_some) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    group = reading.take_group()
    try:
        assert sorted(item.index for item in group) == list(range(40))
        assert all(item.file.size == len(PDF) for item in group)
        assert all(item.file.data.read() == PDF for item in group)
        assert not reading.pending
        assert not reading.refused
        assert reading.take_group() == []  # taken: the next group starts empty
    finally:
        close(group)


def test_a_group_stops_growing_at_the_byte_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three files fill a group: a reader stops there and the rest waits for the next group.
    monkeypatch.setattr(importer, "GROUP_BYTES", 3 * len(PDF))
    reading = _Reading(parsed_lines(write_files(tmp_path, 8)), ArchiveFiles(tmp_path), 10**7)
    sizes = []
    while reading.pending:
        reading.read_some()
        group = reading.take_group()
        sizes.append(len(group))
        close(group)
    assert sizes == [3, 3, 2]


def test_unreadable_files_fail_their_own_line_only(tmp_path: Path) -> None:
    names = write_files(tmp_path, 2)
    (tmp_path / "big.pdf").write_bytes(PDF * 3)
    lines = parsed_lines([names[0], "missing.pdf", "../outside.pdf", "big.pdf", names[1]])
    reading = _Reading(lines, ArchiveFiles(tmp_path.resolve()), 2 * len(PDF))
    reading.read_some()
    group = reading.take_group()
    try:
        assert [item.index for item in group] == [0, 4]
        refused = dict(reading.refused)
        assert sorted(refused) == [1, 2, 3]
        for index in (1, 2):
            error = refused[index].error
            assert error is not None
            assert (error.code, error.field) == ("bad_file", "file")
        too_large = refused[3].error
        assert too_large is not None
        assert (too_large.code, too_large.field) == ("payload_too_large", "file")
        assert str(2 * len(PDF)) in too_large.reason
    finally:
        close(group)


def close(group: list[_Ready]) -> None:
    for item in group:
        item.file.close()
