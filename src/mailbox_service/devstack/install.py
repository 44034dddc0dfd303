"""Find, or fetch, the programs the stack runs.

Redis and PostgreSQL come from Debian packages (installed with apt-get when we are root and they
are missing). FerretDB and MinIO are built from pinned Go module versions into `<stack>/bin`:
`go install` cannot be used because the module proxy answers its deprecation lookup with 403,
so we download the module source and build inside it. A missing prerequisite is one line that
says what to install, or to use `docker compose up` instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailbox_service.devstack.config import StackConfig
from mailbox_service.errors import PrerequisiteMissing

Progress = Callable[[str], None]
"""Receives one human line when something slow starts (an apt install, a Go build)."""

MIN_GO = (1, 24)
GO_FALLBACKS = (Path("/usr/local/go/bin/go"), Path("/usr/lib/go/bin/go"))


@dataclass(frozen=True)
class GoTool:
    """A server built from a pinned Go module version."""

    name: str
    module: str
    version: str
    package: str
    """Package to build, relative to the module root."""
    extra_files: tuple[tuple[str, str], ...] = ()
    """Files to add to the source before building (path relative to the module root, text).
    When set, the module is copied out of the read-only module cache and built from the copy."""

    @property
    def pin(self) -> str:
        return f"{self.module}@{self.version}"


FERRETDB = GoTool(
    "ferretdb",
    "github.com/FerretDB/FerretDB",
    "v1.24.2",
    "./cmd/ferretdb",
    # FerretDB embeds its version from a file its release tooling generates; the module zip
    # lacks it and the binary panics at start without it.
    extra_files=(("build/version/version.txt", "v1.24.2\n"),),
)
MINIO = GoTool("minio", "github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c", ".")


def _silent(_line: str) -> None:
    """Default progress sink."""


def _apt_install(package: str, what: str, progress: Progress) -> None:
    """Install a Debian package, or say in one line what the user must install."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PrerequisiteMissing(
            f"{what} is missing: install the Debian/Ubuntu package `{package}` "
            "(or your system's equivalent), or use `docker compose up` instead"
        )
    progress(f"installing {package} with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", package]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # a fresh machine often has no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"apt-get install {package} failed: {last[0]}")


def redis_server(progress: Progress = _silent) -> str:
    """Path of `redis-server`, installing the Debian package when missing."""
    found = shutil.which("redis-server") or _existing("/usr/bin/redis-server")
    if found is None:
        _apt_install("redis-server", "redis-server", progress)
        found = shutil.which("redis-server") or _existing("/usr/bin/redis-server")
    if found is None:
        raise PrerequisiteMissing("redis-server is missing after installing it; check your PATH")
    return found


def _existing(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None


def _postgres_bin_dirs() -> list[Path]:
    """Debian keeps each major version apart; prefer the newest."""
    dirs = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]

    def major(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    return sorted(dirs, key=major, reverse=True)


def postgres_bin_dir(progress: Progress = _silent) -> Path:
    """Folder holding initdb/postgres/pg_isready/psql, installing `postgresql` when missing."""
    dirs = _postgres_bin_dirs()
    if not dirs:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        _apt_install("postgresql", "PostgreSQL (initdb)", progress)
        dirs = _postgres_bin_dirs()
    if not dirs:
        raise PrerequisiteMissing("PostgreSQL's initdb is missing after installing `postgresql`")
    return dirs[0]


def go_binary() -> str:
    """The `go` command, if it is new enough to build the pinned servers."""
    found = shutil.which("go") or next(
        (str(p) for p in GO_FALLBACKS if os.access(p, os.X_OK)), None
    )
    hint = (
        f"install Go >= {MIN_GO[0]}.{MIN_GO[1]} (https://go.dev/dl/) to build FerretDB and "
        "MinIO, or use `docker compose up` instead"
    )
    if found is None:
        raise PrerequisiteMissing(f"Go is not installed: {hint}")
    result = subprocess.run(
        [found, "env", "GOVERSION"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    match = re.match(r"go(\d+)\.(\d+)", result.stdout.strip())
    if match is None or (int(match[1]), int(match[2])) < MIN_GO:
        version = result.stdout.strip() or "unknown version"
        raise PrerequisiteMissing(f"Go at {found} is {version}: {hint}")
    return found


def go_env(config: StackConfig) -> dict[str, str]:
    """Keeps module and build caches inside the stack folder; never switches toolchains
    (a toolchain download would hit the same blocked proxy lookups)."""
    return {
        **os.environ,
        "GOPATH": str(config.go_dir),
        "GOCACHE": str(config.go_dir / "cache"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }


def _pin_path(config: StackConfig, tool: GoTool) -> Path:
    return config.bin_dir / f".{tool.name}.pin"


def _usable(config: StackConfig, tool: GoTool) -> bool:
    """A binary is reused unless a pin file says it was built from another version.

    A binary without a pin file (built by hand) is adopted only if `--version` runs, which
    rejects half-written files and builds that panic at start.
    """
    binary = config.bin_dir / tool.name
    if not os.access(binary, os.X_OK):
        return False
    pin = _pin_path(config, tool)
    if pin.exists():
        return pin.read_text().strip() == tool.pin
    try:
        check = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if check.returncode != 0:
        return False
    pin.write_text(tool.pin + "\n")
    return True


def ensure_go_tool(config: StackConfig, tool: GoTool, progress: Progress = _silent) -> Path:
    """Path of the built server, building it first when needed (minutes on a cold cache).

    A lock file makes a second process (a test run while `make run` starts) wait for the
    build instead of starting the same build again.
    """
    binary = config.bin_dir / tool.name
    if _usable(config, tool):
        return binary
    config.bin_dir.mkdir(parents=True, exist_ok=True)
    with (config.bin_dir / f".{tool.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _usable(config, tool):
            return binary
        _build(config, tool, progress)
    return binary


def _build(config: StackConfig, tool: GoTool, progress: Progress) -> None:
    go = go_binary()
    env = go_env(config)
    config.go_dir.mkdir(parents=True, exist_ok=True)
    build_log = config.go_dir / f"build-{tool.name}.log"
    progress(f"building {tool.name} {tool.version} with Go (first run only; log: {build_log})")
    download = subprocess.run(
        [go, "mod", "download", "-json", tool.pin],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        source_dir = json.loads(download.stdout)["Dir"]
    except (ValueError, KeyError):
        detail = (download.stderr or download.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"go mod download {tool.pin} failed: {detail[0]}") from None
    if tool.extra_files:
        source_dir = str(_patched_copy(config, tool, Path(source_dir)))
    tmp = config.bin_dir / f".{tool.name}.{os.getpid()}.tmp"
    with build_log.open("w") as log:
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), tool.package],
            cwd=source_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        last = build_log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"building {tool.name} failed ({build_log}): {last[0]}")
    os.replace(tmp, config.bin_dir / tool.name)
    _pin_path(config, tool).write_text(tool.pin + "\n")


def _patched_copy(config: StackConfig, tool: GoTool, source: Path) -> Path:
    """A writable copy of the module source with `tool.extra_files` added."""
    target = config.go_dir / "src" / f"{tool.name}@{tool.version}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    for relative, text in tool.extra_files:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_text(text)
    return target
