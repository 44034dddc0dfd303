"""`mailbox-service dev run`: the whole service on the local stack, for `make run`.

Brings the `dev` stack up, applies migrations, makes sure a development ingest key exists,
starts the API and a worker as child processes, prints where everything is, and on Ctrl-C
stops the children and the stack so nothing is left behind.

Stopping is this process's job alone. The children run in process groups of their own, so the
terminal's Ctrl-C reaches only us (and `make`, `uv run` above us), not them: they cannot exit
behind our back and look like a crash. We stop them in order: the API first (no new documents
come in), then the worker (it finishes what it holds), then the stack. The first SIGINT, SIGTERM
or SIGHUP starts that; later ones are ignored, since `uv run` passes on a Ctrl-C the terminal
already delivered. A requested stop exits 0, so `make run` ends without an error line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
import httpx

from mailbox_devtools.demo.seed import seed_demo
from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_service.errors import DependencyUnavailable
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.portal.demo_users import DEMO_USERS
from mailbox_service.settings import load_settings
from mailbox_service.wiring.services import Services

DEV_KEY_FILE = "ingest-key"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CHILD_STOP_TIMEOUT = 15.0
"""Seconds the API or the worker gets to stop after SIGTERM before its group is killed."""


class StopRequested(BaseException):
    """The first stop signal, raised in the main thread the way Ctrl-C raises
    KeyboardInterrupt (a BaseException, so no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _request_stop(signum: int, _frame: FrameType | None) -> None:
    _ignore_stop_signals()
    raise StopRequested(signum)


def _ignore_stop_signals() -> None:
    """From here on the shutdown runs to its end; its own timeouts bound it."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


@dataclass(frozen=True)
class Child:
    """The API or the worker, leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, *args: str) -> Child:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailbox_service", *args],
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        return cls(name, process)

    def stop(self, timeout: float = CHILD_STOP_TIMEOUT) -> None:
        """SIGTERM and wait; after `timeout` SIGKILL. Whatever is left in its group (a worker
        process that outlived its parent) is killed too, so nothing keeps running."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                click.echo(f"the {self.name} did not stop within {timeout:.0f}s: killed", err=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


async def _prepare(known_key: str | None) -> str:
    """Apply migrations and return a working development ingest key (reused across runs)."""
    settings = load_settings()
    services = Services.build(settings)
    try:
        await Migrator(
            MigrationContext(settings, services.database, services.blobs), migrations_dir()
        ).apply_pending(lambda m: click.echo(f"migration applied: {m.id}"))
        seeded = await seed_demo(services)
        click.echo(
            f"demo mailbox: {seeded.documents} documents ({seeded.created} new) for "
            + ", ".join(user.sub for user in seeded.users)
        )
        if known_key and await services.api_keys.authenticate(known_key):
            return known_key
        _, secret = await services.api_keys.create("dev", ["ingest", "admin"])
        return secret
    finally:
        await services.close()


def _private_file(path: Path, value: str) -> None:
    """Write `value` readable by us only, from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    os.replace(tmp, path)


def _wait_live(url: str, api: Child, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise DependencyUnavailable(
                f"the API exited during start-up (code {api.process.returncode})"
            )
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise DependencyUnavailable(f"the API did not answer on {url} within {timeout:.0f}s")


def _watch(children: list[Child]) -> NoReturn:
    """Return only by raising: StopRequested when asked to stop, or an error when a child
    exits on its own (nobody else stops them, so any exit of theirs is a failure)."""
    while True:
        for child in children:
            code = child.process.poll()
            if code is not None:
                raise DependencyUnavailable(
                    f"the {child.name} exited on its own (code {code}); stopping everything"
                )
        time.sleep(0.5)


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--keep-stack", is_flag=True, help="Leave the backing servers running on exit.")
@click.option(
    "--profile",
    default="dev",
    show_default=True,
    help="Stack profile (own ports and data); tests use a test profile.",
)
def run(host: str, port: int, keep_stack: bool, profile: str) -> None:
    """Run API, worker and backing servers in the foreground; Ctrl-C stops everything."""
    stack = Stack(
        StackConfig.for_profile(profile), progress=lambda line: click.echo(f"… {line}", err=True)
    )
    url = f"http://{host}:{port}"
    children: list[Child] = []
    previous = {signum: signal.signal(signum, _request_stop) for signum in STOP_SIGNALS}
    try:
        stack.up()
        # The stack's env carries the JWT secret too: tokens minted after `. .stack/env`
        # are accepted by this API.
        os.environ.update(stack.env())
        os.environ.setdefault("MAILBOX_DEMO_PORTAL", "1")
        os.environ.setdefault("MAILBOX_PORTAL_URL", f"{url}/portal")
        key_file = stack.config.profile_dir / DEV_KEY_FILE
        known = key_file.read_text().strip() if key_file.exists() else None
        key = asyncio.run(_prepare(known))
        if key != known:
            _private_file(key_file, key)
        children.append(Child.start("API", "serve", "--host", host, "--port", str(port)))
        children.append(Child.start("worker", "worker"))
        _wait_live(url, children[0])
        user = DEMO_USERS[0]
        click.echo("")
        click.echo(f"  API           {url}   (OpenAPI: {url}/schema, ready: {url}/health/ready)")
        click.echo(f"  portal        {url}/portal")
        click.echo(f"  captured mail {stack.config.maildir}")
        click.echo(f"  ingest key    {key}")
        click.echo(f"  env           . {stack.config.env_file}")
        click.echo(
            f"  portal token  mailbox-service tokens mint --sub {user.sub} "
            + " ".join(f"--account {account}" for account in user.accounts)
            + "   (after sourcing the env)"
        )
        click.echo("  Ctrl-C stops everything.")
        _watch(children)
    except StopRequested:
        click.echo("\nstopping…")
    finally:
        _ignore_stop_signals()
        for child in children:
            child.stop()
        if not keep_stack:
            stack.down()
        for signum, handler in previous.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(signum, handler)
