"""`make run`'s command: the whole service up on its own stack, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app_fixtures import cli, free_port, invoice_metadata, sample_pdf
from mailbox_service.devstack import StackConfig

# A profile of its own, so the test never touches a developer's running `make run`.
PROFILE = "test8"


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        match = re.search(pattern, seen)
        if match:
            return match.group(1)
    raise AssertionError(f"{pattern!r} not printed within {timeout}s; output:\n{seen}")


def _port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
    except httpx.HTTPError:
        return False
    return True


def test_dev_run_serves_everything_and_ctrl_c_stops_it(test_env: dict[str, str]) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOX_")}
    env |= {"MAILBOX_LOG_FORMAT": "json", "MAILBOX_TEST_STACK_PROFILE": PROFILE}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailbox_service",
            "dev",
            "run",
            "--port",
            str(port),
            "--profile",
            PROFILE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    config = StackConfig.for_profile(PROFILE)
    try:
        key = _read_until(process, r"ingest key\s+(\S+)", timeout=240)
        url = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{url}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text

        meta: dict[str, Any] = invoice_metadata("DEV-RUN-1")
        created = httpx.post(
            f"{url}/v1/documents",
            files={"metadata": (None, json.dumps(meta)), "file": ("a.pdf", sample_pdf())},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        # The demo portal is on and seeded in `make run`.
        assert httpx.get(f"{url}/portal/", timeout=10, follow_redirects=True).status_code == 200
        # The key is kept for the next run, readable only by its owner.
        key_file = Path(config.profile_dir) / "ingest-key"
        assert key_file.read_text().strip() == key
        assert key_file.stat().st_mode & 0o077 == 0
    finally:
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=90)
    assert exit_code == 0
    assert not _port_open(port)
    for server_port in (config.port("redis"), config.port("ferretdb"), config.port("minio")):
        assert not _port_open(server_port), server_port


def test_stack_commands_bring_a_profile_up_report_it_and_stop_it() -> None:
    profile = "test7"
    env = {"MAILBOX_TEST_STACK_PROFILE": profile}
    up = cli("dev", "stack-up", "--profile", profile, env=env, timeout=240)
    config = StackConfig.for_profile(profile)
    assert f"env written to {config.env_file}" in up.stdout
    exported = config.env_file.read_text()
    assert f"export MAILBOX_REDIS_URL=redis://127.0.0.1:{config.port('redis')}/0" in exported
    assert config.env_file.stat().st_mode & 0o077 == 0

    status = cli("dev", "stack-status", "--profile", profile, env=env).stdout
    for name in ("redis", "postgres", "ferretdb", "minio", "smtp"):
        assert re.search(rf"^{name}\s+healthy", status, re.MULTILINE), status

    down = cli("dev", "stack-down", "--profile", profile, env=env)
    assert f"stack '{profile}' is stopped" in down.stdout
    stopped = cli("dev", "stack-status", "--profile", profile, env=env).stdout
    assert re.search(r"^redis\s+stopped", stopped, re.MULTILINE), stopped
    assert not _port_open(config.port("minio"))
