"""Manifest readers: JSON Lines or CSV, one document per record, streamed.

Each record becomes a `ManifestLine` carrying its line number, its text as written (so a failed
line can be fixed and fed again) and either the parsed document or why it could not be parsed.
A broken record never stops the reader: it is one failed line among the others.

A document is the metadata of `POST /v1/documents` plus `file`, a path relative to the base
directory. CSV spells nested fields with dots (`attributes.invoice_number`,
`recipient.email`); empty cells are left out, as if the column were absent.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

import msgspec

from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import ConfigurationError, ServiceError

Format = Literal["jsonl", "csv"]

FILE_FIELD = "file"
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_BOM = b"\xef\xbb\xbf"


class ManifestError(ConfigurationError):
    """The manifest as a whole cannot be read (a usage error, exit code 2)."""


@dataclass(frozen=True)
class ManifestLine:
    """One record of the manifest."""

    number: int
    """1-based line of the manifest file where the record starts."""
    original: str
    """The record as written: a JSON line, or a CSV row (without the header)."""
    document: dict[str, Any] | None
    """The parsed record, or None when it could not be parsed (see `error`)."""
    error: str | None = None
    """Why the record could not be parsed."""
    textual: bool = False
    """True for CSV: every value is a string and may need typing by the document type."""

    @property
    def source_ref(self) -> str | None:
        """The record's `source_ref` if it has a readable one (for the errors file)."""
        value = self.document.get("source_ref") if self.document else None
        return value if isinstance(value, str) else None


def detect_format(path: Path) -> Format:
    """By suffix; otherwise a first non-blank `{` means JSON Lines, anything else CSV."""
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4096).removeprefix(_BOM).lstrip()
    return "jsonl" if head.startswith(b"{") else "csv"


def read_manifest(path: Path, fmt: Format | None = None) -> Iterator[ManifestLine]:
    """Every record of the manifest at `path`, in order, without holding the file in memory."""
    fmt = fmt or detect_format(path)
    return read_jsonl(path) if fmt == "jsonl" else read_csv(path)


def count_records(path: Path, fmt: Format | None = None) -> int:
    """How many records `read_manifest` will yield (for the progress bar's ETA)."""
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        with path.open("rb") as fh:
            return sum(1 for raw in fh if raw.strip() and raw.strip() != _BOM)
    count = 0
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        rows = csv.reader(fh)
        next(rows, None)
        for row in rows:
            if any(cell.strip() for cell in row):
                count += 1
    return count


# -- JSON Lines -------------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[ManifestLine]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                raw = raw.removeprefix(_BOM)
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            yield _parse_json_line(number, raw, text)


def _parse_json_line(number: int, raw: bytes, text: str) -> ManifestLine:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return ManifestLine(number, text, None, f"line is not valid JSON: {exc}")
    if not isinstance(value, dict):
        return ManifestLine(number, text, None, "line must be a JSON object")
    return ManifestLine(number, text, value)


# -- CSV --------------------------------------------------------------------------------------


def read_csv(path: Path) -> Iterator[ManifestLine]:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        rows = csv.reader(fh)
        try:
            header = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ManifestError(f"{path}: the CSV header cannot be read: {exc}") from None
        columns = _check_header(path, header)
        ended_at = rows.line_num
        while True:
            start = ended_at + 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                ended_at = rows.line_num
                yield ManifestLine(start, "", None, f"row is not valid CSV: {exc}", textual=True)
                continue
            ended_at = rows.line_num
            if not any(cell.strip() for cell in row):
                continue
            yield _parse_csv_row(start, columns, row)


def _check_header(path: Path, header: list[str]) -> list[str]:
    columns = [name.strip() for name in header]
    if not any(columns):
        raise ManifestError(f"{path}: the first row must name the columns")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise ManifestError(f"{path}: duplicate CSV columns: {', '.join(duplicates)}")
    if FILE_FIELD not in columns:
        raise ManifestError(f"{path}: the CSV header has no `{FILE_FIELD}` column")
    return columns


def _row_text(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def _parse_csv_row(number: int, columns: list[str], row: list[str]) -> ManifestLine:
    text = _row_text(row)
    if len(row) != len(columns):
        return ManifestLine(
            number,
            text,
            None,
            f"row has {len(row)} cells, the header {len(columns)}",
            textual=True,
        )
    document: dict[str, Any] = {}
    for name, cell in zip(columns, row, strict=True):
        if cell == "" or not name:
            continue
        value: Any = cell
        if name == "notify":
            value = _BOOL_WORDS.get(cell.strip().lower(), cell)
        try:
            _put_dotted(document, name, value)
        except ValueError as exc:
            return ManifestLine(number, text, None, str(exc), textual=True)
    return ManifestLine(number, text, document, textual=True)


def _put_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"column {dotted!r} nests below a column that has a value")
        target = child
    if isinstance(target.get(leaf), dict):
        raise ValueError(f"column {dotted!r} has a value and nested columns")
    target[leaf] = value


def type_textual_attributes(
    document: dict[str, Any], registry: DocumentTypeRegistry
) -> dict[str, Any]:
    """CSV cells are all text; let the document type read "12" as a number, "true" as a flag.

    Only typing happens here; validation stays with the ingest service. When lenient reading
    fails the cells are left as they are, so the service reports the offending field.
    """
    attributes = document.get("attributes")
    name = document.get("type")
    if not isinstance(attributes, dict) or not isinstance(name, str) or name not in registry:
        return document
    try:
        typed = msgspec.convert(attributes, registry.get(name).attributes, strict=False)
    except (msgspec.ValidationError, ValueError, TypeError):
        return document
    return {**document, "attributes": msgspec.to_builtins(typed)}


# -- files ------------------------------------------------------------------------------------


class FileRefused(ServiceError, ValueError):
    """The record's `file` is missing or points outside the base directory."""


class ArchiveFiles:
    """Finds records' files below one base directory; absolute paths and `..` escapes are
    refused.

    `base_dir` must already be resolved. Symbolic links are followed and the target must
    still be inside `base_dir`, so a link cannot smuggle in a file from elsewhere. Each
    directory is resolved once per run: resolving every path in full costs a system call per
    path component, which was a third of a rerun's time reading files (an archive's files
    share a few directories). Safe to share between threads.
    """

    MAX_DIRECTORIES = 10_000
    """Resolved directories kept; past that the cache starts again (memory stays bounded)."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._directories: dict[str, Path] = {}

    def resolve(self, value: object) -> Path:
        relative = _relative_path(value)
        if not relative.name:  # "." or similar: the base directory itself
            return self._checked(self.base_dir / relative, value)
        path = self._directory(relative.parent, value) / relative.name
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise FileRefused(f"no such file: {value}") from None
        if stat.S_ISLNK(mode):
            return self._checked(path, value)
        return self._regular(path, mode, value)

    def _directory(self, relative: PurePosixPath, value: object) -> Path:
        key = str(relative)
        if (known := self._directories.get(key)) is not None:
            return known
        try:
            folder = (self.base_dir / relative).resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise FileRefused(f"no such file: {value}") from None
        self._inside(folder, value)
        if len(self._directories) >= self.MAX_DIRECTORIES:
            self._directories.clear()
        self._directories[key] = folder
        return folder

    def _checked(self, path: Path, value: object) -> Path:
        """A path that may involve links: resolved in full, then checked."""
        candidate = path.resolve()
        self._inside(candidate, value)
        try:
            mode = os.stat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise FileRefused(f"no such file: {value}") from None
        return self._regular(candidate, mode, value)

    def _inside(self, candidate: Path, value: object) -> None:
        if candidate != self.base_dir and self.base_dir not in candidate.parents:
            raise FileRefused(f"{value!r} leads outside the base directory")

    @staticmethod
    def _regular(candidate: Path, mode: int, value: object) -> Path:
        if not stat.S_ISREG(mode):
            raise FileRefused(f"not a regular file: {value}")
        if not os.access(candidate, os.R_OK):
            raise FileRefused(f"file is not readable: {value}")
        return candidate


def _relative_path(value: object) -> PurePosixPath:
    """The record's `file` as a relative path that cannot climb out by its text."""
    if value is None:
        raise FileRefused("field is required")
    if not isinstance(value, str) or not value.strip():
        raise FileRefused("must be a non-empty path relative to the base directory")
    if "\x00" in value:
        raise FileRefused("path contains a NUL character")
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        raise FileRefused(f"absolute paths are not allowed ({value!r})")
    if ".." in posix.parts or ".." in windows.parts:
        raise FileRefused(f"'..' is not allowed in file paths ({value!r})")
    return posix
