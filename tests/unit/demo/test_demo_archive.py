"""`demo archive`: deterministic, valid PDFs showing their data, and a manifest that validates."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailbox_devtools.demo.archive import ArchiveSpec, entries, render_entry, write_archive
from mailbox_service.cli.main import main
from mailbox_service.doctypes import load_registry
from mailbox_service.ingestion.schemas import convert_metadata

UNTIL = dt.date(2026, 1, 1)


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def manifest_of(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def check_pdf_structure(pdf: bytes) -> None:
    """Header, every xref offset pointing at its object, startxref pointing at the xref."""
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.findall(rb"startxref\n(\d+)\n", pdf)[-1])
    assert pdf[startxref:].startswith(b"xref\n")
    table = pdf[startxref:].split(b"trailer")[0].splitlines()
    count = int(table[1].split()[1])
    offsets = [int(row.split()[0]) for row in table[3 : 2 + count]]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", pdf):
        end = match.end() + int(match.group(1))
        assert pdf[end:].startswith(b"\nendstream")


def test_same_seed_same_archive_other_seed_other_archive(tmp_path: Path) -> None:
    spec = ArchiveSpec(count=30, accounts=4, until=UNTIL, seed=11, size_kib=4)
    write_archive(tmp_path / "a", spec)
    write_archive(tmp_path / "b", spec)
    write_archive(
        tmp_path / "c", ArchiveSpec(count=30, accounts=4, until=UNTIL, seed=12, size_kib=4)
    )
    first = tree_digest(tmp_path / "a")
    assert len(first) == 31  # 30 PDFs and the manifest
    assert first == tree_digest(tmp_path / "b")
    assert manifest_of(tmp_path / "a") != manifest_of(tmp_path / "c")


def test_manifest_lines_are_valid_ingest_metadata(tmp_path: Path) -> None:
    spec = ArchiveSpec(count=200, accounts=7, until=UNTIL, seed=3, size_kib=2)
    result = write_archive(tmp_path, spec)
    assert result.count == 200
    registry = load_registry(include_entry_points=False)
    lines = manifest_of(tmp_path)
    assert len(lines) == 200
    assert len({line["source_ref"] for line in lines}) == 200
    assert {line["type"] for line in lines} == {"invoice", "contract_letter", "shipment_document"}
    assert len({line["account_id"] for line in lines}) <= 7
    issued = []
    for line in lines:
        document = dict(line)
        path = tmp_path / str(document.pop("file"))
        assert path.is_file()
        metadata = convert_metadata(document)
        registry.get(metadata.type).validate(metadata.attributes)
        assert metadata.issued_at is not None
        issued.append(metadata.issued_at)
    until = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # Spread over the ten years before `until`, not bunched up.
    assert all(until - dt.timedelta(days=3653) <= moment < until for moment in issued)
    assert len({moment.year for moment in issued}) >= 9


def test_types_can_be_narrowed(tmp_path: Path) -> None:
    write_archive(
        tmp_path,
        ArchiveSpec(
            count=20,
            accounts=2,
            until=UNTIL,
            types=("invoice",),
            size_kib=1,
            ref_prefix="old-billing",
        ),
    )
    lines = manifest_of(tmp_path)
    assert {line["type"] for line in lines} == {"invoice"}
    assert lines[0]["source_ref"] == "old-billing-0000001"


def test_each_pdf_is_valid_sized_and_shows_its_document(tmp_path: Path) -> None:
    spec = ArchiveSpec(count=12, accounts=3, until=UNTIL, seed=5, size_kib=30)
    write_archive(tmp_path, spec)
    for line in manifest_of(tmp_path):
        pdf = (tmp_path / str(line["file"])).read_bytes()
        check_pdf_structure(pdf)
        assert len(pdf) == 30 * 1024
        assert str(line["source_ref"]).encode() in pdf
        assert str(line["account_id"]).encode() in pdf
        assert str(line["issued_at"]).encode() in pdf


def test_a_size_below_the_text_keeps_the_text(tmp_path: Path) -> None:
    (entry,) = entries(ArchiveSpec(count=1, accounts=1, until=UNTIL))
    pdf = render_entry(entry, 10)
    check_pdf_structure(pdf)
    assert entry.metadata["source_ref"].encode() in pdf


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext not installed")
def test_a_pdf_reader_extracts_the_document_data(tmp_path: Path) -> None:
    write_archive(tmp_path, ArchiveSpec(count=1, accounts=1, until=UNTIL, types=("invoice",)))
    (line,) = manifest_of(tmp_path)
    result = subprocess.run(
        ["pdftotext", str(tmp_path / str(line["file"])), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stderr == ""
    attributes = line["attributes"]
    assert isinstance(attributes, dict)
    assert f"Invoice {attributes['invoice_number']}" in result.stdout
    assert f"Total amount: {attributes['total_amount']}" in result.stdout


def test_cli_writes_the_archive_and_refuses_unknown_types(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "arc"
    result = runner.invoke(
        main,
        [
            "demo",
            "archive",
            str(out),
            "--count",
            "5",
            "--accounts",
            "2",
            "--types",
            "invoice,shipment_document",
            "--size-kib",
            "3",
            "--seed",
            "9",
            "--until",
            "2025-06-30",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 5 documents" in result.output
    lines = manifest_of(out)
    assert len(lines) == 5
    assert {line["type"] for line in lines} <= {"invoice", "shipment_document"}
    assert all(str(line["issued_at"]) < "2025-06-30" for line in lines)

    bad = runner.invoke(
        main,
        ["demo", "archive", str(out), "--count", "1", "--accounts", "1", "--types", "invoice,memo"],
    )
    assert bad.exit_code == 2
    assert "no sample data for type(s) memo" in bad.output
