"""Pinned source archives of the engine's PostgreSQL extensions: find, fetch, verify, unpack.

No package registry we can rely on serves DocumentDB or pgvector for PostgreSQL 15, so the stack
builds them from source archives pinned by commit. An archive is looked for, in order, in the
folder named by `MAILBOX_STACK_SOURCES`, then in the cache's `sources/` folder, and is otherwise
downloaded from the upstream archive of the pinned commit.

Two digests guard each archive. `sha256` is that of the exact file we vendor. Upstream serves the
same tree under the commit's address, but gzipped differently, so its file digest differs: what
we check on a downloaded archive is `tree_sha256`, a digest of the unpacked files (paths, modes,
contents), which is the same for both. A corrupt or substituted archive fails one of them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailbox_service.errors import PrerequisiteMissing

SOURCES_VAR = "MAILBOX_STACK_SOURCES"
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SourceArchive:
    """One pinned upstream source tree."""

    name: str
    """Component name, also the cache key's prefix (`documentdb`, `pgvector`)."""
    version: str
    filename: str
    """The archive's file name; it unpacks into one folder named like it without `.tar.gz`."""
    commit: str
    url: str
    """Where upstream serves the tree of `commit` as a tar.gz."""
    sha256: str
    """Digest of the vendored file."""
    tree_sha256: str
    """Digest of the unpacked tree (see `tree_digest`), the same for upstream's archive."""

    @property
    def top_folder(self) -> str:
        return self.filename.removesuffix(".tar.gz")


DOCUMENTDB = SourceArchive(
    name="documentdb",
    version="0.106.0-ferretdb-2.5.0",
    filename="documentdb-0.106.0-ferretdb-2.5.0.tar.gz",
    commit="beb9d25d9845477c85559d3293cd1f929cdf2b9c",
    url="https://github.com/FerretDB/documentdb/archive/beb9d25d9845477c85559d3293cd1f929cdf2b9c.tar.gz",
    sha256="c06c5b2287ac9e439c9fbcfc1095c605d81975e1e6792aa83eb4c9f7008b7eff",
    tree_sha256="718fbc4cafa03ea0cedda8bf9f19e2e15c895f4d718dc448645515e775f51710",
)
PGVECTOR = SourceArchive(
    name="pgvector",
    version="0.8.0",
    filename="pgvector-0.8.0.tar.gz",
    commit="2627c5ff775ae6d7aef0c430121ccf857842d2f2",
    url="https://github.com/pgvector/pgvector/archive/2627c5ff775ae6d7aef0c430121ccf857842d2f2.tar.gz",
    sha256="f735d37c1f8a32a0c46f29db63860bdc1ed06a423d4280767afbd38f1fe58778",
    tree_sha256="363343bddf92098a24603863775c1d5afeb4d4eedd4444032954b8a170963d28",
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(archive: Path) -> str:
    """SHA-256 over every member below the top folder: path, kind, exec bit, content or link
    target, in path order. Independent of compression, member order and timestamps."""
    entries: list[bytes] = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1] or member.isdir():
                continue
            path = parts[1].rstrip("/")
            if member.issym():
                body = b"link:" + member.linkname.encode()
            elif member.isfile():
                extracted = tar.extractfile(member)
                content = extracted.read() if extracted else b""
                executable = b"x" if member.mode & 0o111 else b"-"
                body = executable + hashlib.sha256(content).digest()
            else:
                continue
            entries.append(path.encode() + b"\0" + body)
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update(entry + b"\n")
    return digest.hexdigest()


def _problem(source: SourceArchive, what: str, fix: str) -> PrerequisiteMissing:
    return PrerequisiteMissing(f"{source.name} {source.version} source archive {what}: {fix}")


def _verify_vendored(source: SourceArchive, path: Path) -> None:
    actual = file_sha256(path)
    if actual != source.sha256:
        raise _problem(
            source,
            f"{path} is corrupt (SHA-256 {actual[:16]}…, expected {source.sha256[:16]}…)",
            f"replace it with the pinned archive or remove it to download commit {source.commit}",
        )


def _verify_tree(source: SourceArchive, path: Path) -> None:
    try:
        actual = tree_digest(path)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _problem(
            source, f"{path} is not a readable tar.gz ({exc})", "delete it and run again"
        ) from None
    if actual != source.tree_sha256:
        raise _problem(
            source,
            f"{path} does not hold commit {source.commit} (tree digest {actual[:16]}…)",
            "delete it and run again",
        )


def _download(source: SourceArchive, target: Path) -> None:
    url = source.url
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,  # noqa: S310
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise _problem(
            source,
            f"is not in ${SOURCES_VAR} and downloading {url} failed ({exc})",
            f"set {SOURCES_VAR} to a folder holding {source.filename}",
        ) from None
    try:
        _verify_tree(source, partial)
    except PrerequisiteMissing:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def locate(source: SourceArchive, cache_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """A verified archive of `source`: vendored, cached or freshly downloaded."""
    env = os.environ if env is None else env
    folder = env.get(SOURCES_VAR, "").strip()
    if folder:
        vendored = Path(folder).expanduser() / source.filename
        if vendored.is_file():
            _verify_vendored(source, vendored)
            return vendored
    cached = cache_dir / "sources" / source.filename
    if cached.is_file():
        _verify_tree(source, cached)
        return cached
    _download(source, cached)
    return cached


def unpack(archive: Path, into: Path) -> Path:
    """Unpack into an empty `into`; returns the source folder (whatever its top name is)."""
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    tops = [path for path in into.iterdir() if path.is_dir()]
    if len(tops) != 1:
        raise PrerequisiteMissing(f"{archive} does not unpack into one folder")
    return tops[0]
