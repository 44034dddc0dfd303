"""Portal token verification: HS256 for development, JWKS (RS256/ES256) from a real HTTP server.

The JWKS tests serve the key set from a tiny real HTTP server in this process, so fetching,
caching and refetching on key rotation run exactly as against an identity provider.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailbox_service.auth import JwksKeySet, PortalUser, TokenVerifier, mint_token
from mailbox_service.auth.verified import Verified, VerifiedTokens
from mailbox_service.errors import ConfigurationError, DependencyUnavailable, Unauthenticated
from mailbox_service.settings import AuthSettings

SECRET = "unit-test-hs256-secret-0123456789abcdef"
ISSUER = "https://idp.example/realms/portal"
SHARED = b"a-shared-secret-published-by-mistake-0123"
HS_SETTINGS = AuthSettings(jwt_secret=SECRET, issuer=ISSUER, audience="mailbox")


def claims(**overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    base: dict[str, Any] = {
        "sub": "alice",
        "accounts": ["A1", "A2"],
        "aud": "mailbox",
        "iss": ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- HS256 ---------------------------------------------------------------------------------


async def test_valid_hs256_token_gives_sub_and_accounts() -> None:
    token = jwt.encode(claims(accounts=["A1", "A2", "A1"]), SECRET, algorithm="HS256")
    user = await TokenVerifier(HS_SETTINGS).verify(token)
    assert user.sub == "alice"
    assert user.accounts == ("A1", "A2")  # repeats dropped, order kept
    assert user.expires_at is not None
    assert user.expires_at > dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("overrides", "secret", "message"),
    [
        ({"exp": -3600}, SECRET, "expired"),
        ({"aud": "someone-else"}, SECRET, "not meant for this service"),
        ({"iss": "https://evil.example"}, SECRET, "issuer"),
        ({}, "another-secret-of-sufficient-length-0000", "signature"),
        ({"exp": None}, SECRET, "`exp`"),
        ({"aud": None}, SECRET, "`aud`"),
        ({"sub": None}, SECRET, "`sub`"),
        ({"accounts": None}, SECRET, "accounts"),
        ({"accounts": "A1"}, SECRET, "accounts"),
        ({"accounts": ["ok", "bad account id"]}, SECRET, "accounts"),
        ({"sub": ""}, SECRET, "sub"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "wrong-signature",
        "no-exp",
        "no-aud",
        "no-sub",
        "no-accounts",
        "accounts-not-a-list",
        "bad-account-id",
        "empty-sub",
    ],
)
async def test_bad_hs256_tokens_are_refused(
    overrides: dict[str, Any], secret: str, message: str
) -> None:
    # Claims are made when the test runs, not when it is collected: a long suite run would
    # otherwise let the "valid" expiry pass and every case fail as merely expired.
    if isinstance(overrides.get("exp"), int):
        overrides = {
            **overrides,
            "exp": int(dt.datetime.now(dt.UTC).timestamp()) + overrides["exp"],
        }
    token = jwt.encode(claims(**overrides), secret, algorithm="HS256")
    with pytest.raises(Unauthenticated, match=message):
        await TokenVerifier(HS_SETTINGS).verify(token)


async def test_alg_none_is_refused() -> None:
    unsigned = ".".join(
        [
            b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
            b64(json.dumps(claims()).encode()),
            "",
        ]
    )
    with pytest.raises(Unauthenticated, match="algorithm 'none' is not accepted"):
        await TokenVerifier(HS_SETTINGS).verify(unsigned)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 20_000])
async def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        await TokenVerifier(HS_SETTINGS).verify(garbage)


async def test_rs256_token_is_refused_when_only_hs256_is_configured() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims(), key, algorithm="RS256")
    with pytest.raises(Unauthenticated, match="'RS256' is not accepted"):
        await TokenVerifier(HS_SETTINGS).verify(token)


async def test_nothing_configured_accepts_nothing() -> None:
    verifier = TokenVerifier(AuthSettings(issuer=ISSUER))
    assert not verifier.configured
    with pytest.raises(Unauthenticated):
        await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_mint_refuses_without_secret_and_round_trips_with_one() -> None:
    with pytest.raises(ConfigurationError, match="MAILBOX_AUTH_JWT_SECRET"):
        mint_token(AuthSettings(issuer=ISSUER), "alice", ["A1"])
    token = mint_token(HS_SETTINGS, "alice", ["A1"], ttl_s=60)
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience="mailbox", issuer=ISSUER)
    assert decoded["sub"] == "alice"
    assert decoded["accounts"] == ["A1"]
    assert decoded["exp"] - decoded["iat"] == 60


# --- JWKS ----------------------------------------------------------------------------------


class JwksServer:
    """A tiny real HTTP server whose JWKS document a test can swap (key rotation)."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/realms/portal/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *jwks: dict[str, Any]) -> None:
        self.document = {"keys": list(jwks)}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def public_jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(
        jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key())
    )
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def rsa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def jwks_verifier(server: JwksServer, min_refresh_interval_s: float = 0.0) -> TokenVerifier:
    settings = AuthSettings(jwks_url=server.url, issuer=ISSUER, audience="mailbox")
    keys = JwksKeySet(server.url, min_refresh_interval_s=min_refresh_interval_s)
    return TokenVerifier(settings, jwks=keys)


def rs256(key: rsa.RSAPrivateKey, kid: str, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm="RS256", headers={"kid": kid})


async def test_jwks_token_is_verified_and_keys_are_cached(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    verifier = jwks_verifier(jwks_server)
    for _ in range(3):
        user = await verifier.verify(rs256(rsa_keys[0], "k1"))
        assert user.accounts == ("A1", "A2")
    assert jwks_server.hits == 1


async def test_key_rotation_is_picked_up_by_refetching_on_unknown_kid(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    verifier = jwks_verifier(jwks_server)
    await verifier.verify(rs256(rsa_keys[0], "k1"))

    # The provider rotates: the new key signs from now on, the old one is withdrawn.
    jwks_server.publish(public_jwk(rsa_keys[1], "k2", "RS256"))
    user = await verifier.verify(rs256(rsa_keys[1], "k2", sub="bob"))
    assert user.sub == "bob"
    assert jwks_server.hits == 2
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(rs256(rsa_keys[0], "k1"))


async def test_unknown_kids_cannot_make_us_hammer_the_provider(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    verifier = jwks_verifier(jwks_server, min_refresh_interval_s=60)
    for n in range(5):
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.verify(rs256(rsa_keys[0], f"invented-{n}"))
    assert jwks_server.hits == 1


async def test_a_key_signed_token_with_a_foreign_key_under_a_known_kid_is_refused(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    with pytest.raises(Unauthenticated, match="signature"):
        await jwks_verifier(jwks_server).verify(rs256(rsa_keys[1], "k1"))


async def test_jwks_checks_expiry_audience_and_issuer_too(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    verifier = jwks_verifier(jwks_server)
    past = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
    cases: list[tuple[dict[str, Any], str]] = [
        ({"exp": past}, "expired"),
        ({"aud": "x"}, "not meant"),
        ({"iss": "x"}, "issuer"),
    ]
    for bad, message in cases:
        with pytest.raises(Unauthenticated, match=message):
            await verifier.verify(rs256(rsa_keys[0], "k1", **bad))


async def test_hs256_is_refused_when_only_jwks_is_configured(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    """Algorithm confusion: the RSA public key (which anyone can fetch) used as an HMAC secret."""
    jwk = public_jwk(rsa_keys[0], "k1", "RS256")
    # Even an `oct` key published in the JWKS must not make HS256 acceptable.
    jwks_server.publish(jwk, {"kty": "oct", "kid": "k1", "k": b64(SHARED), "alg": "HS256"})
    pem = (
        rsa_keys[0]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forged_parts = [
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()),
        b64(json.dumps(claims()).encode()),
    ]
    signing_input = ".".join(forged_parts).encode()
    signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256).sign(
        signing_input, pem
    )
    forged = ".".join([*forged_parts, b64(signature)])
    verifier = jwks_verifier(jwks_server)
    with pytest.raises(Unauthenticated, match="'HS256' is not accepted"):
        await verifier.verify(forged)
    with pytest.raises(Unauthenticated, match="'HS256' is not accepted"):
        await verifier.verify(
            jwt.encode(claims(), SHARED, algorithm="HS256", headers={"kid": "k1"})
        )
    # And an ordinary HS256 token signed with some secret, of course.
    with pytest.raises(Unauthenticated, match="'HS256' is not accepted"):
        await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))


async def test_es256_keys_from_jwks_work_and_key_type_must_match_algorithm(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey]
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.publish(public_jwk(ec_key, "ec1", "ES256"), public_jwk(rsa_keys[0], "k1", "RS256"))
    verifier = jwks_verifier(jwks_server)
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "ec1"})
    assert (await verifier.verify(token)).sub == "alice"
    # An RS256 token naming the EC key's kid finds no RSA key under that kid.
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(rs256(rsa_keys[0], "ec1"))


async def test_provider_down_at_start_is_a_503_not_a_401(jwks_server: JwksServer) -> None:
    jwks_server.status = 500
    verifier = jwks_verifier(jwks_server)
    with pytest.raises(DependencyUnavailable, match="identity provider"):
        await verifier.verify(_unsigned_rs256())


def _unsigned_rs256() -> str:
    """A structurally valid RS256 token; verification must stop at fetching the keys."""
    header = b64(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    return f"{header}.{b64(json.dumps(claims()).encode())}.{b64(b'sig')}"


# --- tokens verified once per session (auth/verified.py) -------------------------------------


class CountingDecode:
    """Counts the full checks `TokenVerifier` runs, by wrapping the real `jwt.decode`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = jwt.decode

        def decode(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr("mailbox_service.auth.tokens.jwt.decode", decode)


async def test_a_session_token_is_checked_in_full_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decodes = CountingDecode(monkeypatch)
    verifier = TokenVerifier(HS_SETTINGS)
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    users = [await verifier.verify(token) for _ in range(3)]
    assert decodes.calls == 1
    assert users[0].sub == "alice"
    assert users[1:] == [users[0], users[0]]
    # Another token (another user, same second) is its own entry, checked in full.
    bob = await verifier.verify(jwt.encode(claims(sub="bob"), SECRET, algorithm="HS256"))
    assert bob.sub == "bob"
    assert decodes.calls == 2


async def test_a_refused_token_is_checked_in_full_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decodes = CountingDecode(monkeypatch)
    verifier = TokenVerifier(HS_SETTINGS)
    forged = jwt.encode(claims(), "another-secret-of-sufficient-length-0000", algorithm="HS256")
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="signature"):
            await verifier.verify(forged)
    assert decodes.calls == 3


async def test_a_remembered_token_still_expires_on_time() -> None:
    verifier = TokenVerifier(HS_SETTINGS, leeway_s=0)
    exp = int(time.time()) + 2
    token = jwt.encode(claims(exp=exp), SECRET, algorithm="HS256")
    assert (await verifier.verify(token)).sub == "alice"
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.01)
    with pytest.raises(Unauthenticated, match="expired"):
        await verifier.verify(token)


async def test_a_remembered_token_does_not_outlive_its_key(
    jwks_server: JwksServer, rsa_keys: list[rsa.RSAPrivateKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keys are refetched on every use here (max_age 0), as they would be once they aged.
    jwks_server.publish(public_jwk(rsa_keys[0], "k1", "RS256"))
    settings = AuthSettings(jwks_url=jwks_server.url, issuer=ISSUER, audience="mailbox")
    keys = JwksKeySet(jwks_server.url, max_age_s=0, min_refresh_interval_s=0)
    verifier = TokenVerifier(settings, jwks=keys)
    token = rs256(rsa_keys[0], "k1")
    assert (await verifier.verify(token)).sub == "alice"

    # The same key material refetched is a new key object: the token is checked in full again
    # (and passes), rather than trusted because of an older check.
    decodes = CountingDecode(monkeypatch)
    assert (await verifier.verify(token)).sub == "alice"
    assert decodes.calls == 1

    # The provider withdraws the key: the very token that passed a moment ago is refused.
    jwks_server.publish(public_jwk(rsa_keys[1], "k2", "RS256"))
    with pytest.raises(Unauthenticated, match="unknown key"):
        await verifier.verify(token)


def test_the_remembered_tokens_are_bounded_oldest_first() -> None:
    now = [1000.0]
    remembered = VerifiedTokens(capacity=2, clock=lambda: now[0])
    user = PortalUser(sub="alice", accounts=("A1",))

    def entry(valid_until: float) -> Verified:
        return Verified(user, "HS256", None, SECRET, valid_until)

    remembered.remember(b"first", entry(2000.0))
    remembered.remember(b"second", entry(2000.0))
    remembered.remember(b"third", entry(1500.0))
    assert len(remembered) == 2
    assert remembered.get(b"first") is None
    assert remembered.get(b"second") is not None
    now[0] = 1500.0  # `valid_until` itself is already too late
    assert remembered.get(b"third") is None
    assert len(remembered) == 1
    nothing_kept = VerifiedTokens(capacity=0)
    nothing_kept.remember(b"x", entry(2000.0))
    assert nothing_kept.get(b"x") is None
