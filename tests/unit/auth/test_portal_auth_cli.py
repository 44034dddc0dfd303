"""`mailbox-service tokens mint`, run as a real subprocess as a developer would."""

from __future__ import annotations

from pathlib import Path

import jwt

from app_fixtures import cli
from mailbox_devtools.devstack import Stack, StackConfig

SECRET = "cli-test-secret-0123456789abcdef0123456789"
ENV = {"MAILBOX_AUTH_JWT_SECRET": SECRET, "MAILBOX_AUTH_ISSUER": "cli-test"}


def test_mint_prints_only_the_token() -> None:
    result = cli(
        "tokens",
        "mint",
        "--sub",
        "alice",
        "--account",
        "A1",
        "--account",
        "A2",
        "--ttl",
        "120",
        env=ENV,
    )
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # alone on stdout: usable in $(...)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="mailbox", issuer="cli-test")
    assert claims["sub"] == "alice"
    assert claims["accounts"] == ["A1", "A2"]
    assert claims["exp"] - claims["iat"] == 120


def test_mint_refuses_without_a_secret() -> None:
    result = cli(
        "tokens",
        "mint",
        "--sub",
        "alice",
        "--account",
        "A1",
        env={"MAILBOX_AUTH_JWT_SECRET": ""},
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "MAILBOX_AUTH_JWT_SECRET" in result.stderr


def test_mint_rejects_a_malformed_account() -> None:
    result = cli(
        "tokens", "mint", "--sub", "alice", "--account", "no spaces please", env=ENV, check=False
    )
    assert result.returncode != 0
    assert "--account" in result.stderr


def test_the_stack_env_is_enough_to_mint_a_token(tmp_path: Path) -> None:
    """`. .stack/env && mailbox-service tokens mint ...`: the env carries the stack's secret."""
    config = StackConfig.for_profile("test9", env={"MAILBOX_STACK_DIR": str(tmp_path)})
    env = Stack(config).env()
    secret = env["MAILBOX_AUTH_JWT_SECRET"]
    assert len(secret) >= 32
    # Made once per stack and kept, readable by its owner only.
    assert Stack(config).env()["MAILBOX_AUTH_JWT_SECRET"] == secret
    secret_file = config.profile_dir / "jwt-signing-key"
    assert secret_file.read_text().strip() == secret
    assert secret_file.stat().st_mode & 0o077 == 0

    result = cli("tokens", "mint", "--sub", "alice", "--account", "A1", env=env)
    claims = jwt.decode(
        result.stdout.strip(),
        secret,
        algorithms=["HS256"],
        audience="mailbox",
        issuer=env["MAILBOX_AUTH_ISSUER"],
    )
    assert claims["sub"] == "alice"
