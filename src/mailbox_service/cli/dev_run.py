"""`mailbox-service dev run`: the whole service on the local stack, for `make run`.

Brings the `dev` stack up, applies migrations, makes sure a development ingest key exists,
starts the API and a worker as child processes, prints where everything is, and on Ctrl-C
stops the children and the stack so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx

from mailbox_service.demo.seed import seed_demo
from mailbox_service.devstack import Stack, StackConfig
from mailbox_service.errors import DependencyUnavailable
from mailbox_service.migrate import MigrationContext, Migrator
from mailbox_service.paths import migrations_dir
from mailbox_service.server.services import Services
from mailbox_service.settings import load_settings

DEV_KEY_FILE = "ingest-key"


async def _prepare(known_key: str | None) -> str:
    """Apply migrations and return a working development ingest key (reused across runs)."""
    settings = load_settings()
    services = Services.build(settings)
    try:
        await Migrator(
            MigrationContext(settings, services.collections, services.blobs), migrations_dir()
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
    path.write_text(value)
    path.chmod(0o600)


def _wait_live(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DependencyUnavailable(
                f"the API exited during start-up (code {process.returncode})"
            )
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise DependencyUnavailable(f"the API did not answer on {url} within {timeout:.0f}s")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


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
    stack.up()
    # The stack's env carries the JWT secret too: tokens minted after `. .stack/env`
    # are accepted by this API.
    os.environ.update(stack.env())
    os.environ.setdefault("MAILBOX_DEMO_PORTAL", "1")
    url = f"http://{host}:{port}"
    os.environ.setdefault("MAILBOX_PORTAL_URL", f"{url}/portal")
    children: list[subprocess.Popen[bytes]] = []
    try:
        key_file = stack.config.profile_dir / DEV_KEY_FILE
        known = key_file.read_text().strip() if key_file.exists() else None
        key = asyncio.run(_prepare(known))
        if key != known:
            _private_file(key_file, key)
        python = sys.executable
        children.append(
            subprocess.Popen(
                [python, "-m", "mailbox_service", "serve", "--host", host, "--port", str(port)]
            )
        )
        children.append(subprocess.Popen([python, "-m", "mailbox_service", "worker"]))
        _wait_live(url, children[0])
        click.echo("")
        click.echo(f"  API           {url}   (OpenAPI: {url}/schema, ready: {url}/health/ready)")
        click.echo(f"  portal        {url}/portal")
        click.echo(f"  captured mail {stack.config.maildir}")
        click.echo(f"  ingest key    {key}")
        click.echo(f"  env           . {stack.config.env_file}")
        click.echo("  Ctrl-C stops everything.")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = next(c for c in children if c.poll() is not None)
        command = failed.args if isinstance(failed.args, list) else [failed.args]
        raise DependencyUnavailable(
            f"{' '.join(str(part) for part in command)} exited ({failed.returncode})"
        )
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        _stop(children)
        if not keep_stack:
            stack.down()
