"""Start, find and stop one background server process, across invocations.

A server outlives the Python process that started it (`stack-up` returns, the server keeps
running), so everything we need to find it again is on disk: a pid file holding the pid and the
kernel's start time of that pid (so a recycled pid never gets a signal meant for our server), and
a log file. Each server gets its own session, hence its own process group; stopping it signals
the group so helpers it spawned die with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailbox_service.errors import DependencyUnavailable

LOG_MARK = "=== mailbox devstack: starting"
"""First line written to a server's log at each start; log tails begin after the last one."""


class ServerFailed(DependencyUnavailable):
    """A stack server exited or never became healthy; the message carries its log's tail."""


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one server: the command and where its output and pid go."""

    name: str
    argv: Sequence[str]
    log_path: Path
    pid_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    """The complete environment of the process (not merged with ours)."""
    cwd: Path | None = None
    user: str | None = None
    """Run as this OS user (PostgreSQL refuses to run as root)."""
    stop_signal: int = signal.SIGTERM
    signal_group: bool = True
    """Send stop_signal to the whole group; False sends it to the leader only (PostgreSQL wants
    SIGINT on the postmaster alone, which then shuts its backends down in order)."""


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_time: str | None
    """Field 22 of /proc/<pid>/stat when the pid was written; None where /proc is missing."""


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name may contain spaces."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.rsplit(")", 1)[-1].split()


def process_start_time(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def _proc_available() -> bool:
    return Path("/proc/self/stat").exists()


def pid_alive(record: PidRecord) -> bool:
    """True when the recorded process exists, is not a zombie, and is the one we started."""
    if _proc_available():
        fields = _stat_fields(record.pid)
        if fields is None or fields[0] in {"Z", "X"}:
            return False
        return record.start_time is None or fields[19] == record.start_time
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group.

    Zombies are skipped on purpose: PID 1 in some sandboxes never reaps orphans, and a zombie
    holds no port or file, so it must not make a stop look unfinished.
    """
    if not _proc_available():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] not in {"Z", "X"} and fields[2] == str(pgid):
            members.append(int(entry.name))
    return members


def read_pid(pid_path: Path) -> PidRecord | None:
    try:
        parts = pid_path.read_text().split()
    except FileNotFoundError:
        return None
    if not parts or not parts[0].isdigit():
        return None
    return PidRecord(int(parts[0]), parts[1] if len(parts) > 1 else None)


def running_pid(pid_path: Path) -> int | None:
    """The pid of the server this pid file names, if it is still running."""
    record = read_pid(pid_path)
    return record.pid if record and pid_alive(record) else None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def launch(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    """Start the server in its own session with output appended to its log; write its pid file.

    The caller keeps the Popen only to reap the child if it stops it in the same process.
    """
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    spec.pid_path.parent.mkdir(parents=True, exist_ok=True)
    if spec.cwd is not None:
        spec.cwd.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with spec.log_path.open("ab") as log:
        log.write(f"\n{LOG_MARK} {spec.name} at {stamp}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(spec.env),
            cwd=spec.cwd,
            start_new_session=True,
            user=spec.user,
            group=spec.user,
            extra_groups=[] if spec.user else None,
        )
    _write_atomically(spec.pid_path, f"{child.pid} {process_start_time(child.pid) or ''}\n")
    return child


def terminate(
    spec: ProcessSpec,
    timeout: float = 15.0,
    child: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop the server and everything in its process group; SIGKILL after `timeout` seconds.

    Safe to call when it is not running; removes the pid file either way.
    """
    record = read_pid(spec.pid_path)
    if record is None:
        return
    # The leader's pid is the group id (own session). A live group whose leader died is still
    # ours: Linux does not hand out a pid that is in use as a process group id.
    leader_ok = pid_alive(record)
    if leader_ok or (record.start_time is not None and group_members(record.pid)):
        try:
            if spec.signal_group:
                os.killpg(record.pid, spec.stop_signal)
            elif leader_ok:
                os.kill(record.pid, spec.stop_signal)
            else:
                os.killpg(record.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not _wait_group_gone(record.pid, timeout, child):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGKILL)
            _wait_group_gone(record.pid, 5.0, child)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)
    spec.pid_path.unlink(missing_ok=True)


def _wait_group_gone(pgid: int, timeout: float, child: subprocess.Popen[bytes] | None) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if child is not None:
            child.poll()  # reap our own child so it does not linger as a zombie
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on host:port (a bind with SO_REUSEADDR ignores TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines the server wrote since its latest start."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 64 * 1024))
            text = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log written)"
    if LOG_MARK in text:
        text = text.rsplit(LOG_MARK, 1)[-1].split("\n", 1)[-1]
    tail = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> bool:
    """Poll `check` until it passes or `timeout` passes; give up early once `alive` says the
    process died, since a dead server never turns healthy."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return True
        if alive is not None and not alive():
            # one last look: the server may have answered and then exited on purpose
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
