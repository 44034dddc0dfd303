"""Find, or fetch, the programs the stack runs.

Redis and PostgreSQL come from Debian packages (installed with apt-get when we are root and they
are missing; the engine's PostgreSQL side is `engine.py`). FerretDB and MinIO are built from
pinned Go module versions into the per-user cache, one folder per version. FerretDB is built
with `go install <module>@<version>`, with the Go toolchain it was released with (the module
proxy serves toolchains too); MinIO's module has replace directives, which `go install` refuses,
so its source is downloaded and built in place. A missing prerequisite is one line that says
what to install, or to use `docker compose up` instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailbox_devtools.devstack.config import StackConfig
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
    toolchain: str = "local"
    """GOTOOLCHAIN for the build: `local`, or a release fetched through the module proxy."""
    go_install: bool = False
    """Build with `go install module/package@version` (keeps the module's version in the
    binary) instead of building inside the downloaded module."""

    @property
    def pin(self) -> str:
        return f"{self.module}@{self.version}"


FERRETDB = GoTool(
    "ferretdb",
    "github.com/FerretDB/FerretDB/v2",
    "v2.5.0",
    "./cmd/ferretdb",
    # v2.5.0 does not build with Go >= 1.25 (a file tagged !go1.25 defines setGOMAXPROCS).
    toolchain="go1.24.6",
    go_install=True,
)
MINIO = GoTool("minio", "github.com/minio/minio", "v0.0.0-20260212201848-7aac2a2c5b7c", ".")


def _silent(_line: str) -> None:
    """Default progress sink."""


def apt_install(packages: Sequence[str], refusal: str, progress: Progress) -> None:
    """Install Debian packages with apt-get; where we cannot (not root, no apt-get), raise
    `refusal`, one line saying what the user must install."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PrerequisiteMissing(refusal)
    names = " ".join(packages)
    progress(f"installing {names} with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # a fresh machine often has no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"apt-get install {names} failed: {last[0]}")


def redis_server(progress: Progress = _silent) -> str:
    """Path of `redis-server`, installing the Debian package when missing."""
    found = shutil.which("redis-server") or _existing("/usr/bin/redis-server")
    if found is None:
        refusal = (
            "redis-server is missing: install the Debian/Ubuntu package `redis-server` "
            "(or your system's equivalent), or use `docker compose up` instead"
        )
        apt_install(["redis-server"], refusal, progress)
        found = shutil.which("redis-server") or _existing("/usr/bin/redis-server")
    if found is None:
        raise PrerequisiteMissing("redis-server is missing after installing it; check your PATH")
    return found


def _existing(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else None


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


def go_env(config: StackConfig, tool: GoTool) -> dict[str, str]:
    """Module and build caches in the per-user cache; the tool's pinned toolchain."""
    return {
        **os.environ,
        "GOPATH": str(config.go_dir),
        "GOCACHE": str(config.go_dir / "cache"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": tool.toolchain,
    }


def tool_binary(config: StackConfig, tool: GoTool) -> Path:
    return config.tool_dir(tool.name, tool.version) / "bin" / tool.name


def _usable(binary: Path) -> bool:
    """The binary runs `--version`; rejects half-written files and builds that panic."""
    if not os.access(binary, os.X_OK):
        return False
    try:
        check = subprocess.run(
            [str(binary), "--version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def ensure_go_tool(config: StackConfig, tool: GoTool, progress: Progress = _silent) -> Path:
    """Path of the built server, building it first when needed (minutes on a cold cache).

    The binary sits in a folder named after its version, so a version bump builds anew and
    never runs a stale binary. A lock file makes a second process (a test run while
    `make run` starts) wait for the build instead of starting the same build again.
    """
    binary = tool_binary(config, tool)
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / f".{tool.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        _build(config, tool, progress)
    return binary


def _build(config: StackConfig, tool: GoTool, progress: Progress) -> None:
    go = go_binary()
    env = go_env(config, tool)
    config.go_dir.mkdir(parents=True, exist_ok=True)
    binary = tool_binary(config, tool)
    build_log = binary.parent.parent / "build.log"
    progress(f"building {tool.name} {tool.version} with Go (first run only; log: {build_log})")
    staging = binary.parent / f".build-{os.getpid()}"
    staging.mkdir(parents=True, exist_ok=True)
    if tool.go_install:
        command = [go, "install", "-trimpath", f"{tool.module}/{tool.package[2:]}@{tool.version}"]
        env["GOBIN"] = str(staging)
        cwd = str(staging)
    else:
        command = [go, "build", "-trimpath", "-o", str(staging / tool.name), tool.package]
        cwd = _module_source(go, env, tool)
    with build_log.open("w") as log:
        result = subprocess.run(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    built = staging / tool.name
    if result.returncode != 0 or not _usable(built):
        shutil.rmtree(staging, ignore_errors=True)
        last = build_log.read_text().strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"building {tool.name} failed (log: {build_log}): {last[0]}")
    os.replace(built, binary)
    shutil.rmtree(staging, ignore_errors=True)


def _module_source(go: str, env: dict[str, str], tool: GoTool) -> str:
    """Download the pinned module; the folder of its source in the module cache."""
    download = subprocess.run(
        [go, "mod", "download", "-json", tool.pin],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return str(json.loads(download.stdout)["Dir"])
    except (ValueError, KeyError):
        detail = (download.stderr or download.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PrerequisiteMissing(f"go mod download {tool.pin} failed: {detail[0]}") from None
