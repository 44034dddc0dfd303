"""`mailbox-service tokens mint`, run as a real subprocess as a developer would."""

from __future__ import annotations

import jwt

from app_fixtures import cli

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
