"""Manifest readers (JSON Lines, CSV), CSV typing and the base-directory rule for files."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import msgspec
import pytest

from mailbox_service.backfill.manifest import (
    ArchiveFiles,
    FileRefused,
    ManifestError,
    count_records,
    detect_format,
    read_manifest,
    type_textual_attributes,
)
from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.doctypes.registry import builtin_types

INVOICE = {
    "type": "invoice",
    "source_ref": "INV-1",
    "account_id": "A-1",
    "attributes": {
        "invoice_number": "1",
        "total_amount": "9.50",
        "currency": "EUR",
        "due_date": "2020-01-31",
    },
    "file": "a.pdf",
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- JSON Lines -------------------------------------------------------------------------------


def test_jsonl_lines_keep_their_number_text_and_errors(tmp_path: Path) -> None:
    good = json.dumps(INVOICE)
    manifest = write(
        tmp_path / "m.jsonl",
        f"{good}\n\n   \n{{broken\n[1, 2]\n{good}\r\n",
    )
    lines = list(read_manifest(manifest))

    assert [line.number for line in lines] == [1, 4, 5, 6]
    assert lines[0].document == INVOICE
    assert lines[0].original == good
    assert lines[0].source_ref == "INV-1"
    assert lines[0].error is None
    assert lines[1].document is None
    assert lines[1].error is not None
    assert "not valid JSON" in lines[1].error
    assert lines[1].original == "{broken"
    assert lines[1].source_ref is None
    assert lines[2].error == "line must be a JSON object"
    # A Windows line ending is not part of the original text.
    assert lines[3].original == good
    assert not lines[3].textual
    assert count_records(manifest) == 4


def test_jsonl_tolerates_a_byte_order_mark(tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + json.dumps(INVOICE).encode() + b"\n")
    (line,) = read_manifest(manifest)
    assert line.document == INVOICE
    assert count_records(manifest) == 1


def test_format_is_taken_from_the_suffix_or_the_first_character(tmp_path: Path) -> None:
    assert detect_format(write(tmp_path / "a.jsonl", "x")) == "jsonl"
    assert detect_format(write(tmp_path / "a.ndjson", "x")) == "jsonl"
    assert detect_format(write(tmp_path / "a.csv", "{")) == "csv"
    assert detect_format(write(tmp_path / "a.txt", '\n  {"type": 1}\n')) == "jsonl"
    assert detect_format(write(tmp_path / "b.txt", "type,file\n")) == "csv"


# -- CSV --------------------------------------------------------------------------------------

CSV_HEADER = (
    "type,source_ref,account_id,issued_at,notify,file,attributes.invoice_number,"
    "attributes.total_amount,attributes.currency,attributes.due_date,"
    "attributes.billing_period.start,attributes.billing_period.end,recipient.email,"
    "recipient.name\n"
)


def test_csv_rows_become_nested_documents(tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "m.csv",
        CSV_HEADER + "invoice,R1,A-1,2016-03-01T00:00:00Z,false,f/1.pdf,N1,12.00,EUR,2016-03-31,"
        '2016-02-01,2016-02-29,kim@example.org,"Kim, the customer"\n'
        + "\n"
        + 'invoice,R2,A-2,,yes,f/2.pdf,N2,1.00,EUR,2016-04-30,,,,"two\nlines"\n'
        + "invoice,R3,A-3,,,f/3.pdf,N3,1.00,EUR,2016-04-30,,,,\n",
    )
    lines = list(read_manifest(manifest))

    assert [line.number for line in lines] == [2, 4, 6]
    first = lines[0].document
    assert first == {
        "type": "invoice",
        "source_ref": "R1",
        "account_id": "A-1",
        "issued_at": "2016-03-01T00:00:00Z",
        "notify": False,
        "file": "f/1.pdf",
        "attributes": {
            "invoice_number": "N1",
            "total_amount": "12.00",
            "currency": "EUR",
            "due_date": "2016-03-31",
            "billing_period": {"start": "2016-02-01", "end": "2016-02-29"},
        },
        "recipient": {"email": "kim@example.org", "name": "Kim, the customer"},
    }
    assert lines[0].textual
    # Empty cells are left out, as if the column were absent.
    second = lines[1].document
    assert second is not None
    assert "issued_at" not in second
    assert "billing_period" not in second["attributes"]
    assert second["notify"] is True
    assert second["recipient"] == {"name": "two\nlines"}
    assert "notify" not in (lines[2].document or {})
    # The original row is CSV again, quoted where needed, ready to be fixed and fed back.
    assert lines[0].original.startswith("invoice,R1,A-1,")
    assert lines[0].original.endswith(',"Kim, the customer"')
    assert count_records(manifest) == 3


def test_csv_row_with_the_wrong_number_of_cells_is_a_failed_line(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "type,source_ref,file\ninvoice,R1\ninvoice,R2,x.pdf\n")
    bad, good = read_manifest(manifest)
    assert bad.document is None
    assert bad.error == "row has 2 cells, the header 3"
    assert bad.number == 2
    assert good.document == {"type": "invoice", "source_ref": "R2", "file": "x.pdf"}


def test_csv_column_with_a_value_and_nested_columns_is_a_failed_line(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "attributes,attributes.x,file\nv,w,a.pdf\n,w,a.pdf\n")
    clash, fine = read_manifest(manifest)
    assert clash.document is None
    assert clash.error is not None
    assert "attributes.x" in clash.error
    assert fine.document == {"attributes": {"x": "w"}, "file": "a.pdf"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("type,source_ref\n", "no `file` column"),
        ("type,file,type\n", "duplicate CSV columns: type"),
        (",,\n", "must name the columns"),
    ],
)
def test_csv_header_problems_stop_the_whole_manifest(
    tmp_path: Path, header: str, message: str
) -> None:
    manifest = write(tmp_path / "m.csv", header + "a,b,c\n")
    with pytest.raises(ManifestError, match=message):
        list(read_manifest(manifest))
    assert ManifestError.exit_code == 2


def test_empty_csv_has_no_lines(tmp_path: Path) -> None:
    manifest = write(tmp_path / "m.csv", "")
    assert list(read_manifest(manifest)) == []
    assert count_records(manifest) == 0


class _CountedAttributes(msgspec.Struct, forbid_unknown_fields=True):
    pages: int
    urgent: bool
    sent_on: dt.date


class _Counted(DocumentType):
    name = "counted"
    label = "Counted"
    attributes = _CountedAttributes


def test_csv_cells_are_typed_by_the_document_type() -> None:
    registry = DocumentTypeRegistry([*builtin_types(), _Counted()])
    document = {
        "type": "counted",
        "attributes": {"pages": "12", "urgent": "true", "sent_on": "2020-01-02"},
    }
    typed = type_textual_attributes(document, registry)
    assert typed["attributes"] == {"pages": 12, "urgent": True, "sent_on": "2020-01-02"}
    # Strict validation (what the service does) now accepts it.
    registry.get("counted").validate(typed["attributes"])

    # What cannot be typed is left alone, so the service names the field.
    wrong = {
        "type": "counted",
        "attributes": {"pages": "many", "urgent": "true", "sent_on": "2020-01-02"},
    }
    assert type_textual_attributes(wrong, registry) == wrong
    unknown = {"type": "nope", "attributes": {"pages": "1"}}
    assert type_textual_attributes(unknown, registry) == unknown


# -- files below the base directory -----------------------------------------------------------


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    (root / "files").mkdir(parents=True)
    (root / "files" / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "secret.pdf").write_bytes(b"%PDF-1.4")
    return root.resolve()


def test_a_relative_path_inside_the_base_directory_is_resolved(base: Path) -> None:
    assert ArchiveFiles(base).resolve("files/a.pdf") == base / "files" / "a.pdf"
    assert ArchiveFiles(base).resolve("./files/a.pdf") == base / "files" / "a.pdf"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "field is required"),
        ("", "non-empty path"),
        (12, "non-empty path"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("C:\\archive\\a.pdf", "absolute paths are not allowed"),
        ("../secret.pdf", "'..' is not allowed"),
        ("files/../../secret.pdf", "'..' is not allowed"),
        ("files\\..\\..\\secret.pdf", "'..' is not allowed"),
        ("files/missing.pdf", "no such file: files/missing.pdf"),
        ("files", "not a regular file"),
    ],
)
def test_files_outside_or_missing_are_refused(base: Path, value: object, message: str) -> None:
    with pytest.raises(FileRefused, match=message):
        ArchiveFiles(base).resolve(value)


def test_a_symlink_may_not_lead_out_of_the_base_directory(base: Path) -> None:
    os.symlink(base.parent / "secret.pdf", base / "files" / "link.pdf")
    os.symlink(base / "files" / "a.pdf", base / "files" / "inside.pdf")
    with pytest.raises(FileRefused, match="leads outside the base directory"):
        ArchiveFiles(base).resolve("files/link.pdf")
    assert ArchiveFiles(base).resolve("files/inside.pdf") == base / "files" / "a.pdf"


def test_a_directory_link_may_not_lead_out_of_the_base_directory(base: Path) -> None:
    outside = base.parent / "elsewhere"
    outside.mkdir()
    (outside / "b.pdf").write_bytes(b"%PDF-1.4")
    os.symlink(outside, base / "out")
    os.symlink(base / "files", base / "alias")
    files = ArchiveFiles(base)
    for _ in range(2):  # the second time from the resolved-directory cache
        with pytest.raises(FileRefused, match="leads outside the base directory"):
            files.resolve("out/b.pdf")
        assert files.resolve("alias/a.pdf") == base / "files" / "a.pdf"
        assert files.resolve("files/a.pdf") == base / "files" / "a.pdf"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nowhere/a.pdf", "no such file: nowhere/a.pdf"),
        ("files/a.pdf/b.pdf", "no such file: files/a.pdf/b.pdf"),
        ("files/dangling.pdf", "no such file: files/dangling.pdf"),
        (".", "not a regular file"),
        ("files/", "not a regular file"),
    ],
)
def test_missing_paths_and_dangling_links_are_refused(base: Path, value: str, message: str) -> None:
    os.symlink(base / "files" / "gone.pdf", base / "files" / "dangling.pdf")
    files = ArchiveFiles(base)
    with pytest.raises(FileRefused, match=message):
        files.resolve(value)
    # A refusal is not remembered as a directory: the file appears, then it is found.
    (base / "nowhere").mkdir()
    (base / "nowhere" / "a.pdf").write_bytes(b"%PDF-1.4")
    assert files.resolve("nowhere/a.pdf") == base / "nowhere" / "a.pdf"
