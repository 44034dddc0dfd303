"""The portal against a real identity provider: Keycloak tokens over OIDC, verified by JWKS.

Each test makes its own Keycloak users (accounts from a user attribute, roles from another, the
`support` realm role, a one-time-code device) and its own accounts, and talks to the whole app
(HTTP in-process; Socket.IO on a served process) configured with the realm's issuer and JWKS URL.
The key rotation runs last: it changes the realm's signing key under the running app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec
import pytest
import socketio
from litestar.testing import AsyncTestClient

from app_fixtures import (
    LiveServer,
    cli,
    free_port,
    post_document,
    sample_pdf,
    start_live_server,
    stop_process,
    unique,
)
from keycloak_fixtures import KeycloakRealm, sign_in_with_code
from mailbox_devtools.devstack.keycloak import Keycloak
from mailbox_devtools.devstack.process import ServerFailed
from mailbox_fixtures import bearer, ingest
from mailbox_service.doctypes.base import DocumentType
from mailbox_service.doctypes.registry import DocumentTypeRegistry, builtin_types
from mailbox_service.settings import Settings
from mailbox_service.wiring.app import create_litestar
from mailbox_service.wiring.services import Services

Client = AsyncTestClient[Any]


class LabReportAttributes(msgspec.Struct, forbid_unknown_fields=True):
    panel: str


class LabReport(DocumentType):
    """A health document: its file needs a step-up sign-in."""

    name = "lab_report"
    label = "Lab report"
    attributes = LabReportAttributes
    sensitive = True


def oidc_settings(settings: Settings, realm: KeycloakRealm) -> Settings:
    auth = msgspec.structs.replace(settings.auth, jwks_url=realm.jwks_url, issuer=realm.issuer)
    return msgspec.structs.replace(settings, auth=auth)


@pytest.fixture(scope="module")
async def oidc_client(
    settings: Settings, services: Services, keycloak: KeycloakRealm
) -> AsyncIterator[Client]:
    """The HTTP app trusting the realm, with a sensitive type installed beside the built-ins."""
    configured = oidc_settings(settings, keycloak)
    registry = DocumentTypeRegistry([*builtin_types(), LabReport()])
    app_services = Services.build(configured, registry=registry)
    app = create_litestar(configured, services=app_services)
    async with AsyncTestClient(app=app, timeout=30) as client:
        try:
            yield client
        finally:
            # The app runs on the client's own loop; its clients must close there.
            client.blocking_portal.call(app_services.close)


async def ids_listed(client: Client, token: str, **params: Any) -> list[str]:
    answer = await client.get("/v1/mailbox/documents", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


async def ingest_lab_report(client: Client, key: str, account_id: str) -> str:
    metadata = {
        "type": "lab_report",
        "source_ref": unique("lab"),
        "account_id": account_id,
        "attributes": {"panel": "lipids"},
        "notify": False,
    }
    answer = await post_document(client, key, metadata, sample_pdf(unique("lab")))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_realm_publishes_the_issuer_and_keys_the_service_is_told(keycloak: KeycloakRealm) -> None:
    # The start time is the suite's cost of this module (printed with -s).
    print(f"keycloak start: {keycloak.start_s:.1f} s")
    discovery = httpx.get(f"{keycloak.issuer}/.well-known/openid-configuration", timeout=10)
    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == keycloak.issuer
    assert discovery.json()["jwks_uri"] == keycloak.jwks_url
    keys = httpx.get(keycloak.jwks_url, timeout=10).json()["keys"]
    assert any(key["kty"] == "RSA" and key.get("use") == "sig" for key in keys)


def test_dev_keycloak_up_prints_the_settings_that_trust_the_realm(
    keycloak: KeycloakRealm,
) -> None:
    # Reuses the running server and realm; what a developer pastes into their shell.
    result = cli("dev", "keycloak-up", "--profile", keycloak.server.config.profile)
    assert f"export MAILBOX_AUTH_ISSUER={keycloak.issuer}" in result.stdout
    assert f"export MAILBOX_AUTH_JWKS_URL={keycloak.jwks_url}" in result.stdout
    assert keycloak.admin_password_hidden(result.stdout + result.stderr)


def test_a_failed_start_is_one_line_naming_the_log(
    keycloak: KeycloakRealm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same installed distribution, a stack folder and ports of its own, and a JVM that
    # cannot start: a heap too small to boot.
    running = keycloak.server.config
    ports = {**running.ports, "keycloak": free_port(), "keycloak_management": free_port()}
    config = dataclasses.replace(running, root=tmp_path, ports=ports)
    monkeypatch.setenv("JAVA_OPTS_KC_HEAP", "-Xmx1m -Xms1m")
    broken = Keycloak(config)
    with pytest.raises(ServerFailed) as failure:
        broken.up()
    message = str(failure.value)
    assert "\n" not in message
    assert str(config.log_path("keycloak")) in message
    assert not broken.is_running()


async def test_realm_token_reads_its_own_mailbox_and_no_other(
    keycloak: KeycloakRealm, oidc_client: Client, ingest_key: str
) -> None:
    mine, other = unique("kc"), unique("kc")
    doc = await ingest(oidc_client, ingest_key, mine)
    foreign = await ingest(oidc_client, ingest_key, other)
    username, password = keycloak.user("owner", accounts=[mine])
    token = keycloak.password_token(username, password)

    # What the verifier sees is what Keycloak issued over OIDC, not a token we made.
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == keycloak.issuer
    assert claims["accounts"] == [mine]

    assert await ids_listed(oidc_client, token) == [doc]
    detail = await oidc_client.get(f"/v1/mailbox/documents/{doc}", headers=bearer(token))
    assert detail.status_code == 200, detail.text
    assert detail.json()["account_id"] == mine
    hidden = await oidc_client.get(f"/v1/mailbox/documents/{foreign}", headers=bearer(token))
    assert hidden.status_code == 404
    assert await ids_listed(oidc_client, token, account=other) == []

    # An HS256 token carrying the same claims is not Keycloak's: the realm's issuer is not
    # the HS256 issuer, so it is refused.
    forged = jwt.encode({**claims, "exp": int(time.time()) + 600}, "x" * 40, algorithm="HS256")
    refused = await oidc_client.get("/v1/mailbox/documents", headers=bearer(forged))
    assert refused.status_code == 401


async def test_reader_reads_and_only_owner_changes_preferences(
    keycloak: KeycloakRealm, oidc_client: Client, ingest_key: str
) -> None:
    # Account ids may contain ':'; the object claim never splits them.
    read_only, owned = f"{unique('kc')}:family", f"{unique('kc')}:own"
    shared_doc = await ingest(oidc_client, ingest_key, read_only)
    own_doc = await ingest(oidc_client, ingest_key, owned)
    username, password = keycloak.user(
        "reader", account_roles={read_only: "reader", owned: "owner"}
    )
    token = keycloak.password_token(username, password)
    assert jwt.decode(token, options={"verify_signature": False})["account_roles"] == {
        read_only: "reader",
        owned: "owner",
    }

    assert sorted(await ids_listed(oidc_client, token)) == sorted([shared_doc, own_doc])
    download = await oidc_client.get(
        f"/v1/mailbox/documents/{shared_doc}/content", headers=bearer(token)
    )
    assert download.status_code == 200
    assert download.content.startswith(b"%PDF")
    marked = await oidc_client.post(
        f"/v1/mailbox/documents/{shared_doc}/read", headers=bearer(token)
    )
    assert marked.status_code == 200
    assert marked.json()["read_at"] is not None

    path = "/v1/mailbox/accounts/{}/preferences"
    seen = await oidc_client.get(path.format(read_only), headers=bearer(token))
    assert seen.status_code == 200
    assert seen.json()["paperless"] is False
    change = {"paperless": True, "email": "reader@example.org"}
    refused = await oidc_client.put(path.format(read_only), json=change, headers=bearer(token))
    error = error_of(refused, 403)
    assert error["code"] == "forbidden"
    assert "`owner` role" in error["message"]
    assert read_only in error["message"]
    unchanged = await oidc_client.get(path.format(read_only), headers=bearer(token))
    assert unchanged.json()["paperless"] is False
    assert unchanged.json()["email"] is None

    accepted = await oidc_client.put(path.format(owned), json=change, headers=bearer(token))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["paperless"] is True


async def test_support_reads_any_mailbox_and_changes_nothing(
    keycloak: KeycloakRealm, oidc_client: Client, ingest_key: str, services: Services
) -> None:
    customer = unique("kc")
    doc = await ingest(oidc_client, ingest_key, customer)
    username, password = keycloak.user("support", realm_roles=["support"])
    token = keycloak.password_token(username, password)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "support" in claims["realm_access"]["roles"]
    assert "accounts" not in claims

    assert await ids_listed(oidc_client, token, account=customer) == [doc]
    assert await ids_listed(oidc_client, token) == []  # support names the customer
    detail = await oidc_client.get(f"/v1/mailbox/documents/{doc}", headers=bearer(token))
    assert detail.status_code == 200
    assert detail.json()["id"] == doc
    download = await oidc_client.get(f"/v1/mailbox/documents/{doc}/content", headers=bearer(token))
    assert download.status_code == 200
    assert download.content.startswith(b"%PDF")

    for method, suffix in (("POST", "read"), ("POST", "archive"), ("DELETE", "archive")):
        answer = await oidc_client.request(
            method, f"/v1/mailbox/documents/{doc}/{suffix}", headers=bearer(token)
        )
        assert "read-only" in error_of(answer, 403)["message"], (method, suffix)
    preferences = f"/v1/mailbox/accounts/{customer}/preferences"
    assert error_of(await oidc_client.get(preferences, headers=bearer(token)), 403)
    changed = await oidc_client.put(preferences, json={"paperless": True}, headers=bearer(token))
    assert "support role" in error_of(changed, 403)["message"]

    after = await oidc_client.get(f"/v1/mailbox/documents/{doc}", headers=bearer(token))
    assert after.json()["read_at"] is None
    assert after.json()["archived"] is False
    missing = await oidc_client.get(
        f"/v1/mailbox/documents/{unique('nope')}", headers=bearer(token)
    )
    assert missing.status_code == 404

    # Every access is in the audit trail, with the role the agent acted in.
    oidc_client.blocking_portal.call(oidc_client.app.state.services.audit.flush)
    sub = claims["sub"]
    entries = await services.database.audit.find({"actor_id": sub}).to_list()
    actions = {(entry["action"], entry["document_id"]) for entry in entries}
    assert ("mailbox.listed", None) in actions
    assert ("document.read", doc) in actions
    assert ("document.downloaded", doc) in actions
    assert all(entry["actor"].get("role") == "support" for entry in entries)


async def test_sensitive_content_needs_a_sign_in_with_a_one_time_code(
    keycloak: KeycloakRealm, oidc_client: Client, ingest_key: str
) -> None:
    account = unique("kc")
    lab = await ingest_lab_report(oidc_client, ingest_key, account)
    invoice = await ingest(oidc_client, ingest_key, account)
    otp_secret = secrets.token_hex(10)
    holder, holder_password = keycloak.user("patient", accounts=[account], totp_secret=otp_secret)
    relative, relative_password = keycloak.user("relative", accounts=[account])

    # A password sign-in: acr `pwd`. The list and the detail show no content: allowed.
    weak = keycloak.password_token(relative, relative_password)
    assert jwt.decode(weak, options={"verify_signature": False})["acr"] == "pwd"
    assert sorted(await ids_listed(oidc_client, weak)) == sorted([lab, invoice])
    detail = await oidc_client.get(f"/v1/mailbox/documents/{lab}", headers=bearer(weak))
    assert detail.status_code == 200
    refused = await oidc_client.get(f"/v1/mailbox/documents/{lab}/content", headers=bearer(weak))
    error = error_of(refused, 403)
    assert error["code"] == "step_up_required"
    assert "acr mfa" in error["message"]
    assert "lab_report" in error["message"]
    plain = await oidc_client.get(f"/v1/mailbox/documents/{invoice}/content", headers=bearer(weak))
    assert plain.status_code == 200

    # Password, then the one-time code from the user's authenticator: acr `mfa`.
    strong = sign_in_with_code(keycloak, holder, holder_password, otp_secret.encode())
    assert jwt.decode(strong, options={"verify_signature": False})["acr"] == "mfa"
    allowed = await oidc_client.get(f"/v1/mailbox/documents/{lab}/content", headers=bearer(strong))
    assert allowed.status_code == 200
    assert allowed.content.startswith(b"%PDF")


class Listener:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.updated: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.client.on("document.updated", self.updated.put_nowait)

    async def connect(self, url: str, token: str) -> None:
        await self.client.connect(
            url, auth={"token": token}, transports=["websocket"], wait_timeout=5
        )


@pytest.fixture(scope="module")
def oidc_server(
    keycloak: KeycloakRealm, services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`mailbox-service serve` trusting the realm (real HTTP and Socket.IO)."""
    env = {"MAILBOX_AUTH_JWKS_URL": keycloak.jwks_url, "MAILBOX_AUTH_ISSUER": keycloak.issuer}
    server = start_live_server(Path(tmp_path_factory.mktemp("oidc")), env)
    yield server
    stop_process(server.process)


async def test_socketio_accepts_realm_tokens_and_support_joins_no_room(
    keycloak: KeycloakRealm, oidc_server: LiveServer, ingest_key: str
) -> None:
    account = unique("kc")
    username, password = keycloak.user("live", accounts=[account])
    owner_token = keycloak.password_token(username, password)
    support_name, support_password = keycloak.user("live-support", realm_roles=["support"])
    support_token = keycloak.password_token(support_name, support_password)
    owner, support = Listener(), Listener()
    try:
        await owner.connect(oidc_server.url, owner_token)
        await support.connect(oidc_server.url, support_token)
        async with httpx.AsyncClient(base_url=oidc_server.url, timeout=30) as http:
            doc = await ingest(http, ingest_key, account)
            marked = await http.post(
                f"/v1/mailbox/documents/{doc}/read", headers=bearer(owner_token)
            )
            assert marked.status_code == 200, marked.text
        event = await asyncio.wait_for(owner.updated.get(), 15)
        assert event["id"] == doc
        # Support reads a mailbox over HTTP when asked; it is never pushed anyone's events.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(support.updated.get(), 1.0)
    finally:
        for listener in (owner, support):
            if listener.client.connected:
                await listener.client.disconnect()


async def test_key_rotation_reaches_the_portal_without_a_restart(
    keycloak: KeycloakRealm, oidc_client: Client, ingest_key: str
) -> None:
    account = unique("kc")
    doc = await ingest(oidc_client, ingest_key, account)
    username, password = keycloak.user("rotate", accounts=[account])
    before = keycloak.password_token(username, password)
    assert await ids_listed(oidc_client, before) == [doc]

    keycloak.admin.rotate_signing_key()
    after = keycloak.password_token(username, password)
    old_kid = jwt.get_unverified_header(before)["kid"]
    assert jwt.get_unverified_header(after)["kid"] != old_kid

    # The app meets an unknown key id and fetches the JWKS again; such fetches are spaced
    # (JwksKeySet.min_refresh_interval_s, 10 s), so the new key is trusted within that.
    deadline = time.monotonic() + 20
    while True:
        answer = await oidc_client.get("/v1/mailbox/documents", headers=bearer(after))
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 401, answer.text
        await asyncio.sleep(0.5)
    assert answer.status_code == 200, answer.text
    assert [item["id"] for item in answer.json()["items"]] == [doc]

    # The retired key left the JWKS with that fetch: a token it signed no longer passes.
    retired = await oidc_client.get("/v1/mailbox/documents", headers=bearer(before))
    assert retired.status_code == 401
    assert "unknown key" in retired.json()["error"]["message"]
