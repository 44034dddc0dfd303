"""Source archives of the engine's extensions: found, fetched, verified; bad ones are named.

The archives here are small ones made by the test, pinned the way the real ones are, so every
path (vendored, cached, downloaded, corrupt, substituted, unreachable) runs in milliseconds and
without the network. A local HTTP server plays the upstream archive host.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbox_devtools.devstack import engine, sources
from mailbox_devtools.devstack.sources import SourceArchive
from mailbox_service.errors import PrerequisiteMissing

FILES = {"Makefile": b"all:\n\t@echo built\n", "src/ext.c": b"int ext(void) { return 1; }\n"}


def make_archive(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return path


def vendored(vendor: Path, version: str, commit: str, files: dict[str, bytes]) -> SourceArchive:
    """Write `ext-<version>.tar.gz` into `vendor` and pin a source to it, as the real ones are."""
    vendor.mkdir(exist_ok=True)
    archive = make_archive(vendor / f"ext-{version}.tar.gz", f"ext-{version}", files)
    return SourceArchive(
        name="ext",
        version=version,
        filename=archive.name,
        commit=commit,
        url="http://127.0.0.1:9/unused.tar.gz",
        sha256=sources.file_sha256(archive),
        tree_sha256=sources.tree_digest(archive),
    )


@pytest.fixture
def pinned(tmp_path: Path) -> SourceArchive:
    """A source pinned to `FILES`, vendored in tmp_path/vendor."""
    return vendored(tmp_path / "vendor", "1.0", "0" * 40, FILES)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) of a loopback HTTP server."""
    root = tmp_path / "upstream"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_a_vendored_archive_is_used_when_its_digest_matches(
    pinned: SourceArchive, tmp_path: Path
) -> None:
    env = {sources.SOURCES_VAR: str(tmp_path / "vendor")}
    assert sources.locate(pinned, tmp_path / "cache", env) == tmp_path / "vendor" / pinned.filename


def test_a_corrupt_vendored_archive_is_named_with_the_fix(
    pinned: SourceArchive, tmp_path: Path
) -> None:
    vendored = tmp_path / "vendor" / pinned.filename
    vendored.write_bytes(vendored.read_bytes()[:-7] + b"garbage")
    with pytest.raises(PrerequisiteMissing) as caught:
        sources.locate(pinned, tmp_path / "cache", {sources.SOURCES_VAR: str(vendored.parent)})
    message = str(caught.value)
    assert "\n" not in message
    assert f"{vendored} is corrupt" in message
    assert "replace it with the pinned archive" in message


def test_upstream_archive_is_verified_by_its_tree_and_cached(
    pinned: SourceArchive, tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    base, served = upstream
    # Upstream names the top folder after the commit and gzips differently: another file
    # digest, the same tree.
    make_archive(served / "commit.tar.gz", f"ext-{pinned.commit}", FILES)
    assert sources.file_sha256(served / "commit.tar.gz") != pinned.sha256
    source = dataclasses.replace(pinned, url=f"{base}/commit.tar.gz")

    cache = tmp_path / "cache"
    fetched = sources.locate(source, cache, env={})
    assert fetched == cache / "sources" / pinned.filename
    (served / "commit.tar.gz").unlink()
    assert sources.locate(source, cache, env={}) == fetched, "the second run needs no network"
    unpacked = sources.unpack(fetched, tmp_path / "src")
    assert (unpacked / "src" / "ext.c").read_bytes() == FILES["src/ext.c"]


def test_a_substituted_upstream_archive_is_refused_and_not_kept(
    pinned: SourceArchive, tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    base, served = upstream
    tampered = {**FILES, "src/ext.c": b"int ext(void) { return 2; }\n"}
    make_archive(served / "commit.tar.gz", "ext-x", tampered)
    source = dataclasses.replace(pinned, url=f"{base}/commit.tar.gz")
    with pytest.raises(PrerequisiteMissing, match=r"does not hold commit 0{40}"):
        sources.locate(source, tmp_path / "cache", env={})
    assert list((tmp_path / "cache" / "sources").iterdir()) == []


def test_an_unreachable_upstream_says_where_to_put_the_archive(
    pinned: SourceArchive, tmp_path: Path, upstream: tuple[str, Path]
) -> None:
    base, _ = upstream
    source = dataclasses.replace(pinned, url=f"{base}/missing.tar.gz")
    with pytest.raises(PrerequisiteMissing) as caught:
        sources.locate(source, tmp_path / "cache", env={})
    message = str(caught.value)
    assert "\n" not in message
    assert "404" in message
    assert f"set {sources.SOURCES_VAR} to a folder holding {pinned.filename}" in message


def test_a_truncated_cached_archive_is_named(pinned: SourceArchive, tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "sources" / pinned.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes((tmp_path / "vendor" / pinned.filename).read_bytes()[:40])
    with pytest.raises(PrerequisiteMissing, match=r"is not a readable tar\.gz .*delete it"):
        sources.locate(pinned, tmp_path / "cache", env={})


# -- building and installing ---------------------------------------------------------------------


def _extension_with_makefile(tmp_path: Path, makefile: bytes) -> engine.Extension:
    source = vendored(tmp_path / "vendor", "2.0", "1" * 40, {"Makefile": makefile})
    return engine.Extension(source, (".",))


def test_a_failed_build_names_its_log_and_leaves_no_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extension = _extension_with_makefile(tmp_path, b"all:\n\t@echo 'ext.c:1: error: boom'; false\n")
    monkeypatch.setattr(engine, "EXTENSIONS", (extension,))
    build = engine.EngineBuild(
        tmp_path / "cache", env={sources.SOURCES_VAR: str(tmp_path / "vendor")}
    )
    with pytest.raises(PrerequisiteMissing) as caught:
        build.ensure()
    message = str(caught.value)
    assert "\n" not in message
    assert f"building ext failed (log: {build.log_path(extension)})" in message
    assert "error: boom" in message
    assert not build.stamp(extension).exists()


def test_a_build_is_staged_once_and_installed_only_when_files_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    makefile = (
        b"all:\n\t@echo compiled > ext.so\n"
        b"install:\n\tmkdir -p $(DESTDIR)/usr/lib/pg\n\tcp ext.so $(DESTDIR)/usr/lib/pg/ext.so\n"
    )
    extension = _extension_with_makefile(tmp_path, makefile)
    monkeypatch.setattr(engine, "EXTENSIONS", (extension,))
    said: list[str] = []
    root = tmp_path / "root"
    build = engine.EngineBuild(
        tmp_path / "cache",
        said.append,
        env={sources.SOURCES_VAR: str(tmp_path / "vendor"), "PATH": "/usr/bin:/bin"},
        install_root=root,
    )
    build.ensure()
    assert (root / "usr/lib/pg/ext.so").read_text() == "compiled\n"
    assert [line.split()[0] for line in said] == ["building", "installing"]

    said.clear()
    build.ensure()
    assert said == [], "a built and installed extension costs nothing the second time"

    (root / "usr/lib/pg/ext.so").write_text("an older build\n")
    build.ensure()
    assert said == ["installing ext into PostgreSQL 15"]
    assert (root / "usr/lib/pg/ext.so").read_text() == "compiled\n"


def test_missing_debian_packages_are_named_for_a_non_root_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "missing_packages", lambda: ["postgresql-15-rum", "libbson-dev"])
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # the os module engine calls
    with pytest.raises(PrerequisiteMissing) as caught:
        engine.ensure_packages()
    message = str(caught.value)
    assert "\n" not in message
    assert "apt-get install postgresql-15-rum libbson-dev" in message


def test_installed_packages_are_not_reported_missing() -> None:
    assert engine.missing_packages(("dpkg",)) == []
    assert engine.missing_packages(("no-such-package-mailbox",)) == ["no-such-package-mailbox"]
