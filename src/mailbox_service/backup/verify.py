"""`backup verify`: every file of every snapshot against its recorded SHA-256.

A metadata file is checked against the manifest (hash, then its line count); a blob against
its own name, once however many snapshots refer to it. Each problem names the file, relative
to the backup directory, so an operator knows what to fetch again.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailbox_service.backfill.progress import ProgressDisplay
from mailbox_service.backfill.report import Tally
from mailbox_service.backup.layout import (
    CHUNK,
    MANIFEST,
    PARTIAL,
    SNAPSHOT_DIR,
    BackupError,
    Manifest,
    blob_name,
    blob_path,
    decode_line,
    file_sha256,
    read_manifest,
    snapshots,
)


@dataclass
class VerifyReport:
    snapshots: list[str] = field(default_factory=list)
    files: int = 0
    blobs: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def iter_lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        yield from f


def _metadata_problem(root: Path, snapshot: Path, manifest: Manifest, name: str) -> str | None:
    entry = manifest.files[name]
    path = snapshot / entry.file
    relative = path.relative_to(root)
    if not path.exists():
        return f"missing file {relative}"
    actual = file_sha256(path)
    if actual != entry.sha256:
        return f"altered file {relative}: sha256 {actual}, manifest says {entry.sha256}"
    try:
        lines = sum(1 for _ in iter_lines(path))
    except (OSError, EOFError) as exc:
        return f"unreadable file {relative}: {exc}"
    if lines != entry.count:
        return f"altered file {relative}: {lines} documents, manifest says {entry.count}"
    return None


def _blob_problem(root: Path, sha: str) -> tuple[str | None, int]:
    path = blob_path(root, sha)
    if not path.exists():
        return f"missing file {blob_name(sha)}", 0
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != sha:
        return f"altered file {blob_name(sha)}: sha256 {digest.hexdigest()}", size
    return None, size


def referenced_blobs(path: Path) -> dict[str, str]:
    """sha256 -> the id of a document that refers to it, from a documents file."""
    found: dict[str, str] = {}
    for line in iter_lines(path):
        doc = decode_line(line)
        blob = doc.get("blob")
        if isinstance(blob, dict) and blob.get("sha256"):
            found.setdefault(str(blob["sha256"]), str(doc["_id"]))
    return found


def verify_backup(
    root: Path,
    *,
    snapshot: str | None = None,
    progress: Callable[[int], ProgressDisplay] | None = None,
) -> VerifyReport:
    """Check the named snapshot, or every complete one, and the files they refer to."""
    if not (root / SNAPSHOT_DIR).is_dir():
        raise BackupError(f"{root} is not a backup directory (no {SNAPSHOT_DIR}/)")
    report = VerifyReport()
    complete = snapshots(root)
    base = root / SNAPSHOT_DIR
    if snapshot is not None:
        if not (base / snapshot).is_dir():
            raise BackupError(f"{root} has no snapshot {snapshot!r} (have: {complete})")
        chosen = [snapshot]
    else:
        chosen = sorted(
            p.name for p in base.iterdir() if p.is_dir() and not p.name.endswith(PARTIAL)
        )
    blobs: dict[str, str] = {}
    for name in chosen:
        directory = base / name
        report.snapshots.append(name)
        if not (directory / MANIFEST).exists():
            report.problems.append(f"missing file {SNAPSHOT_DIR}/{name}/{MANIFEST}")
            continue
        manifest = read_manifest(directory)
        for collection in sorted(manifest.files):
            report.files += 1
            problem = _metadata_problem(root, directory, manifest, collection)
            if problem:
                report.problems.append(problem)
            elif collection == "documents":
                for sha, document_id in referenced_blobs(directory / "documents.jsonl.gz").items():
                    blobs.setdefault(sha, document_id)
    tally = Tally()
    display = progress(len(blobs)) if progress else None
    if display:
        display.start()
    try:
        for sha, document_id in sorted(blobs.items()):
            problem, size = _blob_problem(root, sha)
            report.blobs += 1
            report.bytes += size
            tally.bytes += size
            if problem:
                report.problems.append(f"{problem} (document {document_id})")
                tally.failed += 1
            else:
                tally.checked += 1
            if display:
                display.update(tally)
    finally:
        if display:
            display.stop(tally)
    return report
