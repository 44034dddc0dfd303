"""`mailbox-service dev …`: the local development stack (real servers as plain processes)."""

from __future__ import annotations

import secrets

import click

from mailbox_devtools.devstack import Stack, StackConfig
from mailbox_devtools.devstack.keycloak import Keycloak
from mailbox_devtools.devstack.keycloak_realm import PORTAL_CLIENT, REALM, KeycloakAdmin
from mailbox_service.settings import load_settings

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
    """Stop every server of the stack (Keycloak too, if it runs); data stays for the next
    stack-up."""
    stack = _stack(profile)
    stack.down()
    Keycloak(stack.config).down()
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


def _keycloak(profile: str) -> Keycloak:
    config = StackConfig.for_profile(profile)
    return Keycloak(config, progress=lambda line: click.echo(f"… {line}", err=True))


@dev.command("keycloak-up")
@PROFILE_OPTION
def keycloak_up(profile: str) -> None:
    """Start Keycloak (optional identity provider) with the `mailbox` realm; print the
    settings that make the API trust it."""
    server = _keycloak(profile)
    server.up()
    audience = load_settings().auth.audience
    admin = KeycloakAdmin(server.url, server.admin_password)
    try:
        if not admin.realm_exists():
            admin.create_realm(audience)
    finally:
        admin.close()
    issuer = server.issuer(REALM)
    click.echo(f"keycloak '{profile}' is up at {server.url} (log: {server.log_path})")
    click.echo(
        f"  admin console  {server.url}/admin (user admin, password in {server.password_file})"
    )
    click.echo("  let the API trust the realm:")
    click.echo(f"    export MAILBOX_AUTH_JWKS_URL={issuer}/protocol/openid-connect/certs")
    click.echo(f"    export MAILBOX_AUTH_ISSUER={issuer}")
    click.echo(f"    export MAILBOX_AUTH_AUDIENCE={audience}")


@dev.command("keycloak-user")
@PROFILE_OPTION
@click.argument("username")
@click.option("--owner", "owned", multiple=True, help="Account id granted with `owner`.")
@click.option("--reader", "read", multiple=True, help="Account id granted with `reader`.")
@click.option("--support", is_flag=True, help="Give the `support` realm role.")
def keycloak_user(
    profile: str, username: str, owned: tuple[str, ...], read: tuple[str, ...], support: bool
) -> None:
    """Add a user to the dev realm and print its password (a new random one)."""
    server = _keycloak(profile)
    password = secrets.token_urlsafe(12)
    admin = KeycloakAdmin(server.url, server.admin_password)
    try:
        admin.create_user(
            username,
            password,
            accounts=owned,
            account_roles=dict.fromkeys(read, "reader") if read else None,
            realm_roles=["support"] if support else (),
        )
    finally:
        admin.close()
    click.echo(f"user {username} created; password: {password}")
    click.echo(f"  token: POST {server.issuer(REALM)}/protocol/openid-connect/token")
    click.echo(f"         grant_type=password client_id={PORTAL_CLIENT} username, password")


@dev.command("keycloak-down")
@PROFILE_OPTION
def keycloak_down(profile: str) -> None:
    """Stop Keycloak; its realm lived in memory and is gone."""
    _keycloak(profile).down()
    click.echo(f"keycloak '{profile}' is stopped")
