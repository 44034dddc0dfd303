"""`make run`'s command: the whole service up on its own stack, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest

from app_fixtures import cli, free_port, invoice_metadata, sample_pdf
from mailbox_devtools.devstack import Stack, StackConfig

# A profile of its own, so the test never touches a developer's running `make run`.
PROFILE = "test8"


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[StackConfig]:
    """The profile `dev run` uses here; some tests keep its stack up for the next, the module
    leaves it stopped."""
    config = StackConfig.for_profile(PROFILE)
    yield config
    Stack(config).down()


def _clean_env() -> dict[str, str]:
    """A newcomer's shell: none of the service's MAILBOX_* settings (the stack's location,
    ports and build sources stay, as a developer may have set them)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MAILBOX_") or k.startswith("MAILBOX_STACK_")
    }
    return env | {"MAILBOX_LOG_FORMAT": "json"}


class DevRun:
    """`mailbox-service dev run` as `make run` starts it: leading its own process group, the way
    a shell runs a foreground job, with its output in files."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = tmp_path / "dev-run.out"
        self.stderr = tmp_path / "dev-run.err"
        argv = ["dev", "run", "--port", str(self.port), "--profile", PROFILE, *args]
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mailbox_service", *argv],
                stdout=out,
                stderr=err,
                env=_clean_env(),
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 240) -> str:
        """The ingest key, once the banner is printed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"ingest key\s+(\S+)", self.stdout.read_text())
            if match and "Ctrl-C stops everything" in self.stdout.read_text():
                return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"dev run not ready within {timeout}s:\n{self.output()}")

    def descendants(self, *, with_servers: bool = True) -> list[psutil.Process]:
        """Every process below dev run; `with_servers=False` leaves out the stack's servers
        (they run in sessions of their own and outlive a `--keep-stack` run on purpose)."""
        below: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        if with_servers:
            return below
        session = os.getsid(self.process.pid)
        return [p for p in below if os.getsid(p.pid) == session]

    def ctrl_c(self) -> None:
        """What a terminal and `uv run` do on Ctrl-C: SIGINT to the whole foreground process
        group, then `uv run` (without a terminal) passes one more to its child 200 ms later."""
        os.killpg(self.process.pid, signal.SIGINT)
        time.sleep(0.2)
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(
                f"dev run did not stop within {timeout}s:\n{self.output()}"
            ) from None

    def output(self) -> str:
        return self.stdout.read_text() + "\n--- stderr ---\n" + self.stderr.read_text()


def _port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
    except httpx.HTTPError:
        return False
    return True


def _assert_none_left(processes: list[psutil.Process]) -> None:
    # multiprocessing's resource tracker leaves a moment after its parent: allow a few seconds.
    _, alive = psutil.wait_procs(processes, timeout=5)
    left = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [" ".join(p.cmdline()) for p in left]


def _sourced(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`. env_file && mailbox-service ARGS` in a shell that had no MAILBOX_* settings."""
    shell = ["sh", "-c", '. "$0" && exec "$@"', str(env_file)]
    result = subprocess.run(
        [*shell, sys.executable, "-m", "mailbox_service", *args],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


# The two --keep-stack runs first; the Ctrl-C run then stops the stack as `make run` does.


def test_sigterm_stops_it_cleanly_too(dev_stack: StackConfig, tmp_path: Path) -> None:
    run = DevRun(tmp_path, "--keep-stack")
    try:
        run.wait_ready()
        children = run.descendants(with_servers=False)
    finally:
        run.process.terminate()
        exit_code = run.wait()
    output = run.output()
    assert exit_code == 0, output
    assert "error:" not in output
    _assert_none_left(children)
    assert not _port_open(run.port)


def test_a_child_that_dies_is_an_error_and_the_rest_stops(
    dev_stack: StackConfig, tmp_path: Path
) -> None:
    run = DevRun(tmp_path, "--keep-stack")
    try:
        run.wait_ready()
        children = run.descendants(with_servers=False)
        worker = next(p for p in children if "worker" in p.cmdline())
        worker.kill()
        exit_code = run.wait()
    finally:
        if run.process.poll() is None:
            run.ctrl_c()
            run.wait()
    output = run.output()
    assert exit_code != 0
    assert "error: the worker exited on its own" in output, output
    _assert_none_left(children)
    assert not _port_open(run.port)


def test_dev_run_serves_everything_and_ctrl_c_stops_it(
    dev_stack: StackConfig, tmp_path: Path
) -> None:
    run = DevRun(tmp_path)
    try:
        key = run.wait_ready()
        ready = httpx.get(f"{run.url}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text

        meta: dict[str, Any] = invoice_metadata("DEV-RUN-1")
        created = httpx.post(
            f"{run.url}/v1/documents",
            files={"metadata": (None, json.dumps(meta)), "file": ("a.pdf", sample_pdf())},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        # Signed evidence works out of the box: the stack made a development key.
        evidence = httpx.get(
            f"{run.url}/v1/documents/{created.json()['id']}/evidence",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert evidence.status_code == 200, evidence.text
        assert evidence.json()["algorithm"] == "Ed25519"
        # The demo portal is on and seeded in `make run`.
        portal = httpx.get(f"{run.url}/portal/", timeout=10, follow_redirects=True)
        assert portal.status_code == 200
        # The key is kept for the next run, readable only by its owner.
        key_file = dev_stack.profile_dir / "ingest-key"
        assert key_file.read_text().strip() == key
        assert key_file.stat().st_mode & 0o077 == 0

        # Another shell: `. .stack/env` is all it needs to mint a portal token this API
        # accepts, and to create a key.
        token = _sourced(
            dev_stack.env_file, "tokens", "mint", "--sub", "alice", "--account", "DEMO-ALICE"
        ).stdout.strip()
        inbox = httpx.get(
            f"{run.url}/v1/mailbox/documents",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert inbox.status_code == 200, inbox.text
        assert inbox.json()["items"]
        new_key = _sourced(dev_stack.env_file, "keys", "create", "--source", "newcomer")
        types = httpx.get(
            f"{run.url}/v1/document-types",
            headers={"Authorization": f"Bearer {new_key.stdout.strip()}"},
            timeout=10,
        )
        assert types.status_code == 200, types.text

        children = run.descendants()
        assert len(children) >= 2  # the API and the worker (and the servers it started)
    finally:
        run.ctrl_c()
        exit_code = run.wait()
    output = run.output()
    assert exit_code == 0, output
    assert "stopping…" in output
    assert not re.search(r"^(error:|Aborted)", output, re.MULTILINE), output
    _assert_none_left(children)
    assert not _port_open(run.port)
    for server_port in (
        dev_stack.port("redis"),
        dev_stack.port("ferretdb"),
        dev_stack.port("minio"),
    ):
        assert not _port_open(server_port), server_port


def test_stack_commands_bring_a_profile_up_report_it_and_stop_it() -> None:
    # Never the session's own stack (a run with MAILBOX_TEST_STACK_PROFILE=test7 would lose it).
    profile = "test6" if os.environ.get("MAILBOX_TEST_STACK_PROFILE") == "test7" else "test7"
    env = {"MAILBOX_TEST_STACK_PROFILE": profile}
    up = cli("dev", "stack-up", "--profile", profile, env=env, timeout=240)
    config = StackConfig.for_profile(profile)
    assert f"env written to {config.env_file}" in up.stdout
    exported = config.env_file.read_text()
    assert f"export MAILBOX_REDIS_URL=redis://127.0.0.1:{config.port('redis')}/0" in exported
    assert config.env_file.stat().st_mode & 0o077 == 0
    # The env file is enough to mint portal tokens for this stack.
    secret = re.search(r"^export MAILBOX_AUTH_JWT_SECRET=(\S+)$", exported, re.MULTILINE)
    assert secret, exported
    token = _sourced(config.env_file, "tokens", "mint", "--sub", "bob", "--account", "A1")
    claims = jwt.decode(
        token.stdout.strip(),
        secret.group(1),
        algorithms=["HS256"],
        audience="mailbox",
        issuer="mailbox-dev",
    )
    assert claims["sub"] == "bob"

    status = cli("dev", "stack-status", "--profile", profile, env=env).stdout
    for name in ("redis", "postgres", "ferretdb", "minio", "smtp"):
        assert re.search(rf"^{name}\s+healthy", status, re.MULTILINE), status

    down = cli("dev", "stack-down", "--profile", profile, env=env)
    assert f"stack '{profile}' is stopped" in down.stdout
    stopped = cli("dev", "stack-status", "--profile", profile, env=env).stdout
    assert re.search(r"^redis\s+stopped", stopped, re.MULTILINE), stopped
    assert not _port_open(config.port("minio"))
