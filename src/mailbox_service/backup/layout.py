"""What a backup directory holds, and the manifest that describes one snapshot.

    DIR/blobs/<sha256[:2]>/<sha256>             each file once, named by its content's hash
    DIR/snapshots/<id>/manifest.json            counts and SHA-256s of the files beside it
    DIR/snapshots/<id>/<collection>.jsonl.gz    one MongoDB document per line (extended JSON)
    DIR/snapshots/<id>.partial/                 a snapshot being written (or a crashed one)

Snapshot ids are UTC times (`20261130T010203Z`), so they sort in time order and the newest is
the last. Metadata is written whole in every snapshot (compressed, it is small beside the
files); blobs are shared by all snapshots, so a second backup copies only new files. A file's
name is its hash: a blob can be checked without any manifest, and never needs a second copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Final

import msgspec
from bson import json_util
from bson.binary import UuidRepresentation
from bson.json_util import JSONMode, JSONOptions

from mailbox_service.errors import MailboxError

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
PARTIAL: Final = ".partial"
BLOB_DIR: Final = "blobs"
SNAPSHOT_DIR: Final = "snapshots"
CHUNK: Final = 1024 * 1024

JSON_OPTIONS: Final = JSONOptions(
    json_mode=JSONMode.CANONICAL,
    tz_aware=True,
    tzinfo=dt.UTC,
    uuid_representation=UuidRepresentation.STANDARD,
)
"""Canonical extended JSON: dates, ints and binary types come back as exactly what was read."""


class BackupError(MailboxError):
    """A backup or restore cannot go on; the message says why and what to do."""


class CollectionFile(msgspec.Struct, frozen=True):
    file: str
    count: int
    sha256: str
    bytes: int


class BlobTotals(msgspec.Struct, frozen=True):
    referenced: int
    """Distinct files the snapshot's documents point to."""
    bytes: int
    copied: int
    """Files this run copied (the others were already in DIR/blobs)."""
    copied_bytes: int


class Manifest(msgspec.Struct, frozen=True):
    format: int
    snapshot: str
    started_at: dt.datetime
    finished_at: dt.datetime
    database: str
    bucket: str
    migrations: list[str]
    """Migrations applied to the database when the backup was taken."""
    files: dict[str, CollectionFile] = msgspec.field(name="collections")
    """The file of each collection, by collection name (`collections` in manifest.json)."""
    blobs: BlobTotals
    problems: list[str] = []
    """What the backup could not copy (an altered or missing file); empty for a clean one."""


def snapshot_id(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def blob_path(root: Path, sha256: str) -> Path:
    return root / BLOB_DIR / sha256[:2] / sha256


def blob_name(sha256: str) -> str:
    """The blob's path relative to DIR, as problems name it."""
    return f"{BLOB_DIR}/{sha256[:2]}/{sha256}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def encode_line(document: object) -> bytes:
    return json_util.dumps(document, json_options=JSON_OPTIONS).encode() + b"\n"


def decode_line(line: bytes) -> dict[str, object]:
    decoded: dict[str, object] = json_util.loads(line, json_options=JSON_OPTIONS)
    return decoded


def write_manifest(directory: Path, manifest: Manifest) -> None:
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    tmp.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        return msgspec.json.decode(path.read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(f"missing file {path}") from None
    except msgspec.DecodeError as exc:
        raise BackupError(f"{path}: not a backup manifest ({exc})") from None


def snapshots(root: Path) -> list[str]:
    """Complete snapshots (those with a manifest), oldest first."""
    base = root / SNAPSHOT_DIR
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir() if not p.name.endswith(PARTIAL) and (p / MANIFEST).exists()
    )


def snapshot_dir(root: Path, snapshot: str | None) -> Path:
    """The named snapshot, or the newest complete one."""
    found = snapshots(root)
    if snapshot is None:
        if not found:
            raise BackupError(f"{root} holds no complete backup snapshot")
        snapshot = found[-1]
    elif snapshot not in found:
        raise BackupError(f"{root} has no complete snapshot {snapshot!r} (have: {found})")
    return root / SNAPSHOT_DIR / snapshot
