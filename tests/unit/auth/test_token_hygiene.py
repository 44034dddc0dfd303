"""Token hygiene: a guessable HS256 secret stops start-up, long-lived tokens are refused."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt
import pytest

from app_fixtures import cli
from mailbox_service.auth.tokens import TokenVerifier, mint_token
from mailbox_service.errors import BadRequest, ConfigurationError, Unauthenticated
from mailbox_service.settings import AuthSettings, load_settings

SECRET = "hygiene-test-secret-0123456789abcdef0123"
SETTINGS = AuthSettings(jwt_secret=SECRET, issuer="hygiene", max_token_lifetime_s=43200)
SHORT = "only-31-bytes-long-0123456789ab"


def _token(lifetime_s: int | None, *, iat_offset_s: int = 0) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "alice",
        "accounts": ["A1"],
        "aud": "mailbox",
        "iss": "hygiene",
        "exp": now + (lifetime_s or 600) + iat_offset_s,
    }
    if lifetime_s is not None:
        claims["iat"] = now + iat_offset_s
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_short_secret_stops_settings_with_one_line_naming_the_variable() -> None:
    assert len(SHORT.encode()) == 31
    with pytest.raises(ConfigurationError) as info:
        load_settings({"MAILBOX_AUTH_JWT_SECRET": SHORT})
    message = info.value.message
    assert message.startswith("MAILBOX_AUTH_JWT_SECRET: must be at least 32 bytes (got 31)")
    assert "\n" not in message
    assert SHORT not in message  # a secret is never echoed
    # Multi-byte characters count as bytes: 11 x 3 bytes is long enough.
    assert load_settings({"MAILBOX_AUTH_JWT_SECRET": "€" * 11}).auth.jwt_secret == "€" * 11
    # Built in code instead of from the environment: the verifier refuses it too.
    with pytest.raises(ConfigurationError, match="MAILBOX_AUTH_JWT_SECRET"):
        TokenVerifier(AuthSettings(jwt_secret="x" * 8))


@pytest.mark.parametrize(
    "command",
    [
        ("serve", "--port", "1"),
        ("worker",),
        ("tokens", "mint", "--sub", "a", "--account", "A1"),
        ("keys", "list"),
    ],
)
def test_short_secret_stops_every_entry_point(command: tuple[str, ...]) -> None:
    result = cli(*command, env={"MAILBOX_AUTH_JWT_SECRET": "x" * 8}, check=False, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "MAILBOX_AUTH_JWT_SECRET" in lines[0]
    assert "xxxxxxxx" not in result.stderr


async def test_lifetime_within_the_cap_passes() -> None:
    user = await TokenVerifier(SETTINGS).verify(_token(43200))
    assert user.sub == "alice"


async def test_lifetime_over_the_cap_is_refused() -> None:
    with pytest.raises(Unauthenticated, match="longer than the accepted maximum of 43200 s"):
        await TokenVerifier(SETTINGS).verify(_token(43201))
    ten_years = 10 * 365 * 86400
    with pytest.raises(Unauthenticated, match="43200"):
        await TokenVerifier(SETTINGS).verify(_token(ten_years))


async def test_without_iat_the_remaining_lifetime_counts() -> None:
    now = int(time.time())
    base = {"sub": "alice", "accounts": ["A1"], "aud": "mailbox", "iss": "hygiene"}
    short = jwt.encode({**base, "exp": now + 3600}, SECRET, algorithm="HS256")
    assert (await TokenVerifier(SETTINGS).verify(short)).sub == "alice"
    long = jwt.encode({**base, "exp": now + 43200 + 120}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated, match="43200"):
        await TokenVerifier(SETTINGS).verify(long)


async def test_a_huge_exp_is_a_401_not_a_crash() -> None:
    base = {"sub": "a", "accounts": ["A1"], "aud": "mailbox", "iss": "hygiene"}
    token = jwt.encode({**base, "exp": 10**30}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated):
        await TokenVerifier(SETTINGS).verify(token)


def test_mint_refuses_more_than_the_cap() -> None:
    with pytest.raises(BadRequest, match="MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S"):
        mint_token(SETTINGS, "alice", ["A1"], ttl_s=43201)
    token = mint_token(SETTINGS, "alice", ["A1"], ttl_s=43200, now=dt.datetime.now(dt.UTC))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="mailbox", issuer="hygiene")
    assert claims["exp"] - claims["iat"] == 43200


def test_tokens_mint_cli_refuses_more_than_the_cap() -> None:
    env = {"MAILBOX_AUTH_JWT_SECRET": SECRET, "MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S": "600"}
    args = ("tokens", "mint", "--sub", "alice", "--account", "A1", "--ttl")
    refused = cli(*args, "601", env=env, check=False)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S (600 s)" in refused.stderr
    assert cli(*args, "600", env=env).stdout.count(".") == 2


def test_lifetime_setting_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S"):
        load_settings({"MAILBOX_AUTH_MAX_TOKEN_LIFETIME_S": "0"})
