"""`mailbox-service dev …`: the local development stack (real servers as plain processes)."""

from __future__ import annotations

import click

from mailbox_service.devstack import Stack, StackConfig

PROFILE_OPTION = click.option(
    "--profile",
    default="dev",
    show_default=True,
    help="Stack profile: `dev` for make run, `test` for pytest (own ports and data).",
)


def _stack(profile: str) -> Stack:
    """The profile's stack, reporting slow first-run steps (installs, Go builds) on stderr."""
    config = StackConfig.for_profile(profile)
    return Stack(config, progress=lambda line: click.echo(f"… {line}", err=True))


@click.group()
def dev() -> None:
    """Local development stack: Redis, PostgreSQL + FerretDB, MinIO and an SMTP capture."""


@dev.command("stack-up")
@PROFILE_OPTION
def stack_up(profile: str) -> None:
    """Start the stack (reusing servers already running) and write its MAILBOX_* env file."""
    stack = _stack(profile)
    stack.up()
    env = stack.env()
    click.echo(f"stack '{profile}' is up; env written to {stack.config.env_file}")
    click.echo(f"  source it:  . {stack.config.env_file}")
    for status in stack.status():
        click.echo(f"  {status.name:<9} {status.address}")
    click.echo(f"  S3 bucket  {env['MAILBOX_S3_BUCKET']} (credentials in the env file)")
    click.echo(f"  logs       {stack.config.log_dir}")


@dev.command("stack-down")
@PROFILE_OPTION
def stack_down(profile: str) -> None:
    """Stop every server of the stack; data stays for the next stack-up."""
    stack = _stack(profile)
    stack.down()
    click.echo(f"stack '{profile}' is stopped (data kept in {stack.config.profile_dir})")


@dev.command("stack-status")
@PROFILE_OPTION
def stack_status(profile: str) -> None:
    """Show pid, health and address of each server."""
    stack = _stack(profile)
    for status in stack.status():
        state = "healthy" if status.healthy else "UNHEALTHY"
        if status.pid is None:
            state = "stopped"
        pid = f"pid {status.pid}" if status.pid else ""
        click.echo(f"{status.name:<9} {state:<9} {pid:<11} {status.address}")
