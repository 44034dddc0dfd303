"""Attack payloads against a real `mailbox-service serve` (uvicorn, real HTTP) on the real stack.

The exact payloads of issue 11 first (a JSON key of spaces that made the error rewriting
backtrack quadratically, nesting 5,000 deep, `?cursor=%C3%A9.x`), then a table of adversarial
requests sent to every route of the OpenAPI schema with valid credentials: each must be
answered with a 4xx, never a 5xx, in well under a second (measured, < 0.5 s each), and the
server must not log a single failed request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_fixtures import (
    LiveServer,
    invoice_metadata,
    sample_pdf,
    start_live_server,
    stop_process,
    unique,
)
from mailbox_fixtures import bearer, portal_token
from mailbox_service.evidence.keys import write_key_file
from mailbox_service.settings import Settings
from mailbox_service.untrusted import MAX_QUOTED_CHARS

WITHIN_S = 0.5
DEEP = 5000
PAYLOAD_BOUNDARY = "hostile-boundary-7f3a"


@pytest.fixture(scope="module")
def server(
    test_env: dict[str, str], services: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # Rate limits are raised out of the way: this module measures parsers. An evidence key is
    # set, or every evidence route would answer its honest 503 "not configured" first.
    directory = tmp_path_factory.mktemp("hostile")
    write_key_file(directory / "evidence.pem")
    server = start_live_server(
        directory,
        {
            "MAILBOX_RATE_PORTAL_PER_MINUTE": "1000000",
            "MAILBOX_RATE_INGEST_PER_MINUTE": "1000000",
            "MAILBOX_RATE_ANONYMOUS_PER_MINUTE": "1000000",
            "MAILBOX_EVIDENCE_KEY_FILE": str(directory / "evidence.pem"),
        },
    )
    yield server
    stop_process(server.process)


@pytest.fixture
async def http(server: LiveServer) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def account() -> str:
    return unique("hostile")


@pytest.fixture
def portal(settings: Settings, account: str) -> dict[str, str]:
    return bearer(portal_token(settings, account, sub="hostile-user"))


async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)
    return response, time.perf_counter() - started


def multipart(metadata: bytes, file: bytes = b"", boundary: str = PAYLOAD_BOUNDARY) -> bytes:
    file = file or sample_pdf()
    return b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="metadata"\r\n',
            b"Content-Type: application/json\r\n\r\n",
            metadata,
            f"\r\n--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="a.pdf"\r\n',
            b"Content-Type: application/pdf\r\n\r\n",
            file,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


def multipart_headers(key: str, boundary: str = PAYLOAD_BOUNDARY) -> dict[str, str]:
    return {**bearer(key), "Content-Type": f"multipart/form-data; boundary={boundary}"}


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert error["status"] == status
    if field is not None:
        assert error["field"] == field
    # Whatever the client sent, the message repeats only a bounded part of it.
    assert len(error["message"]) < 4 * MAX_QUOTED_CHARS + 200


# --- the exact payloads of issue 11 ---------------------------------------------------------


@pytest.mark.parametrize("size", [16 * 1024, 32 * 1024, 60 * 1024])
async def test_preferences_key_of_spaces_is_a_fast_422(
    http: Any, portal: dict[str, str], account: str, size: int
) -> None:
    body = json.dumps({" " * size: True})
    response, took = await timed(
        http,
        "PUT",
        f"/v1/mailbox/accounts/{account}/preferences",
        content=body,
        headers={**portal, "Content-Type": "application/json"},
    )
    assert_error(response, 422)
    assert "unknown field" in response.json()["error"]["message"]
    assert took < WITHIN_S, f"{size} byte key took {took:.3f} s"


@pytest.mark.parametrize("where", ["top", "recipient", "attributes"])
async def test_metadata_key_of_spaces_is_a_fast_422(
    http: Any, ingest_key: str, account: str, where: str
) -> None:
    spaces = " " * (200 * 1024)  # under the 256 KiB metadata cap
    meta = invoice_metadata(account)
    if where == "top":
        meta[spaces] = 1
    elif where == "recipient":
        meta["recipient"] = {spaces: 1}
    else:
        meta["attributes"][spaces] = 1
    response, took = await timed(
        http,
        "POST",
        "/v1/documents",
        content=multipart(json.dumps(meta).encode()),
        headers=multipart_headers(ingest_key),
    )
    assert_error(response, 422)
    field = response.json()["error"]["field"]
    assert field.startswith(
        {"top": "", "recipient": "recipient.", "attributes": "attributes."}[where]
    )
    assert len(field) < MAX_QUOTED_CHARS + 20
    assert took < WITHIN_S, f"{where}: {took:.3f} s"


async def test_json_nested_5000_deep_is_400(
    http: Any, portal: dict[str, str], ingest_key: str, account: str
) -> None:
    deep_body = b"[" * DEEP + b"]" * DEEP
    response, took = await timed(
        http,
        "PUT",
        f"/v1/mailbox/accounts/{account}/preferences",
        content=deep_body,
        headers={**portal, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "body")
    assert "nested deeper than 32" in response.json()["error"]["message"]
    assert took < WITHIN_S

    meta = json.dumps(invoice_metadata(account)).encode()
    deep_attributes = meta.replace(b'"attributes": {', b'"attributes": {"x": ' + deep_body + b", ")
    for metadata in (deep_body, deep_attributes):
        response, took = await timed(
            http,
            "POST",
            "/v1/documents",
            content=multipart(metadata),
            headers=multipart_headers(ingest_key),
        )
        assert_error(response, 400, "metadata")
        assert took < WITHIN_S


async def test_non_ascii_cursor_is_400(http: Any, portal: dict[str, str], admin_key: str) -> None:
    response = await http.get("/v1/mailbox/documents?cursor=%C3%A9.x", headers=portal)
    assert_error(response, 400, "cursor")
    response = await http.get("/v1/admin/notifications/?cursor=%C3%A9.x", headers=bearer(admin_key))
    assert_error(response, 400, "cursor")


# --- the property: every route, adversarial requests, valid credentials --------------------


@dataclass(frozen=True)
class Attack:
    name: str
    method: str
    url: str
    headers: dict[str, Any]
    content: bytes | None = None
    strict: bool = True
    """True: must be a 4xx. False (input that may be legal for a route): must not be a 5xx."""


def _credentials(path: str, keys: dict[str, dict[str, str]]) -> dict[str, str]:
    if path.startswith("/v1/mailbox"):
        return keys["portal"]
    if path.startswith("/v1/admin"):
        return keys["admin"]
    if path.startswith("/v1/"):
        return keys["ingest"]
    return {}


PATH_VALUES = {
    "nul": "%00",
    "invalid-utf8": "%FF%FE",
    "long": "x" * 5000,
    "traversal": "..%2F..%2Fadmin",
    "huge-number": "9" * 400,
}
QUERY_VALUES = {
    "nul": ("%00", True),
    "crlf": ("a%0D%0ASet-Cookie:%20x=1", True),
    "invalid-utf8": ("%FF%FE", True),
    "long": ("x" * 8000, True),
    "huge-number": ("9" * 5000, True),
    "non-ascii": ("%C3%A9.x", False),
    "exponent": ("-1e999", False),
}
JSON_BODIES = {
    "deep-array": b"[" * DEEP + b"]" * DEEP,
    "deep-object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "1mb-key": json.dumps({" " * (1 << 20): 1}).encode(),
    "60kb-key": json.dumps({" " * 60_000: 1}).encode(),
    "huge-number": b'{"paperless": 1' + b"0" * 5000 + b"}",
    "huge-exponent": b'{"paperless": 1e999999}',
    "nul-in-key": b'{"a\x00b": 1}',
    "nul-escaped": b'{"email": "a\\u0000@example.org"}',
    "invalid-utf8": b'{"email": "\xff\xfe@example.org"}',
    "not-json": b"\x00" * 100,
}


def _metadata_attacks(account: str) -> dict[str, bytes]:
    good = json.dumps(invoice_metadata(account)).encode()
    return {
        "meta-deep": b"[" * DEEP + b"]" * DEEP,
        "meta-huge-number": good.replace(b'"84.20"', b"1" + b"0" * 5000),
        "meta-invalid-utf8": good.replace(b'"EUR"', b'"\xff\xfe"'),
        "meta-nul": good.replace(b'"EUR"', b'"E\\u0000R"'),
        "meta-1mb-key": json.dumps({" " * (1 << 20): 1}).encode(),
        "meta-long-account": good.replace(account.encode(), b"A" * 100_000),
    }


def _multipart_attacks(key: str, account: str) -> list[Attack]:
    good_meta = json.dumps(invoice_metadata(account)).encode()
    auth = bearer(key)
    many_parts = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="p{i}"\r\n\r\nx\r\n'.encode()
        for i in range(5000)
    )
    long_header = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
        + b"a" * 200_000
        + b'.pdf"\r\n\r\n%PDF-1.4\r\n--b--\r\n'
    )
    return [
        Attack(
            "no-boundary",
            "POST",
            "/v1/documents",
            {**auth, "Content-Type": "multipart/form-data"},
            good_meta,
        ),
        Attack(
            "long-boundary",
            "POST",
            "/v1/documents",
            {**auth, "Content-Type": "multipart/form-data; boundary=" + "b" * 5000},
            multipart(good_meta, boundary="b" * 5000),
        ),
        Attack(
            "many-parts",
            "POST",
            "/v1/documents",
            multipart_headers(key, "b"),
            many_parts + b"--b--\r\n",
        ),
        Attack(
            "long-part-header", "POST", "/v1/documents", multipart_headers(key, "b"), long_header
        ),
        Attack("garbage", "POST", "/v1/documents", multipart_headers(key), b"\xff" * 10_000),
        Attack(
            "json-not-multipart",
            "POST",
            "/v1/documents",
            {**auth, "Content-Type": "application/json"},
            good_meta,
        ),
    ]


def build_attacks(
    schema: dict[str, Any], keys: dict[str, dict[str, str]], account: str
) -> list[Attack]:
    attacks: list[Attack] = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            attacks += _route_attacks(path, method.upper(), operation, keys, account)
    return attacks


def _route_attacks(
    path: str,
    method: str,
    operation: dict[str, Any],
    keys: dict[str, dict[str, str]],
    account: str,
) -> list[Attack]:
    """One operation's hostile requests: path and query values, a huge header, credentials
    that are not text, and (outside ingestion) bad JSON bodies."""
    attacks: list[Attack] = []
    creds = _credentials(path, keys)
    params = operation.get("parameters", [])
    path_names = [p["name"] for p in params if p["in"] == "path"]

    def concrete(value: str, path: str = path, names: list[str] = path_names) -> str:
        for name in names:
            path = path.replace("{" + name + "}", value)
        return path

    base = concrete(account if "account" in path else "doc-1")
    if path_names:
        for label, value in PATH_VALUES.items():
            # 404 or 400: neither an existing document nor a legal id.
            attacks.append(Attack(f"path-{label}", method, concrete(value), creds))
    for param in (p for p in params if p["in"] == "query"):
        for label, (value, strict) in QUERY_VALUES.items():
            url = f"{base}?{param['name']}={value}"
            attacks.append(
                Attack(f"query-{param['name']}-{label}", method, url, creds, strict=strict)
            )
    attacks.append(Attack("long-header", method, base, {**creds, "X-Padding": "p" * 60_000}))
    if creds:
        bad_auth = {"Authorization": b"Bearer \xff\xfe\xc3"}
        attacks.append(Attack("bad-auth-bytes", method, base, bad_auth))
    if path == "/v1/documents":
        return attacks
    if method in {"POST", "PUT", "PATCH"} and "requestBody" in operation:
        for label, body in JSON_BODIES.items():
            json_headers = {**creds, "Content-Type": "application/json"}
            attacks.append(Attack(f"body-{label}", method, base, json_headers, body))
    return attacks


async def test_every_route_answers_hostile_requests_with_a_fast_4xx(
    server: LiveServer,
    http: Any,
    portal: dict[str, str],
    ingest_key: str,
    admin_key: str,
    account: str,
) -> None:
    schema = (await http.get("/schema/openapi.json")).json()
    keys = {"portal": portal, "admin": bearer(admin_key), "ingest": bearer(ingest_key)}
    attacks = build_attacks(schema, keys, account)
    attacks += [
        Attack(label, "POST", "/v1/documents", multipart_headers(ingest_key), multipart(meta))
        for label, meta in _metadata_attacks(account).items()
    ]
    attacks += _multipart_attacks(ingest_key, account)
    routes = {(a.method, a.url.split("?")[0]) for a in attacks}
    assert len(schema["paths"]) >= 10, "the schema lost its routes"

    failures: list[str] = []
    timings: list[tuple[float, str]] = []
    for attack in attacks:
        response, took = await timed(
            http, attack.method, attack.url, headers=attack.headers, content=attack.content
        )
        timings.append((took, f"{attack.method} {attack.url[:60]} [{attack.name}]"))
        status = response.status_code
        ok = status < 500 and (400 <= status < 500 or not attack.strict)
        if not ok or took >= WITHIN_S:
            failures.append(
                f"{attack.method} {attack.url[:80]} [{attack.name}]: {status} in {took:.3f} s"
            )
    timings.sort(reverse=True)
    median = timings[len(timings) // 2][0]
    print(f"\n{len(attacks)} hostile requests, {len(routes)} routes; median {median:.4f} s")
    for took, name in timings[:3]:
        print(f"  {took:.3f} s  {name}")
    assert not failures, "\n".join(failures)
    log = await asyncio.to_thread(Path(server.log).read_text)
    assert "request.failed" not in log, "the server logged an unexpected error"


# --- Socket.IO: the same payloads over Engine.IO long-polling ------------------------------


async def _engine_session(http: Any) -> str:
    response = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert response.status_code == 200, response.text
    return str(json.loads(response.text[1:])["sid"])


async def _send_packet(http: Any, sid: str, packet: bytes) -> tuple[httpx.Response, float]:
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    started = time.perf_counter()
    response = await http.post("/socket.io/", params=params, content=packet)
    return response, time.perf_counter() - started


@pytest.mark.parametrize(
    ("label", "auth"),
    [
        ("deep", b"[" * DEEP + b"]" * DEEP),
        ("deep-object", b'{"token":' * DEEP + b'"x"' + b"}" * DEEP),
        ("spaces-key", json.dumps({" " * 60_000: 1}).encode()),
        ("huge-number", b'{"token": 1' + b"0" * 5000 + b"}"),
    ],
)
async def test_socketio_connect_with_hostile_auth_is_refused(
    server: LiveServer, http: Any, label: str, auth: bytes
) -> None:
    sid = await _engine_session(http)
    response, took = await _send_packet(http, sid, b"40" + auth)
    assert response.status_code == 200
    assert took < WITHIN_S
    answer = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid})
    # 44 = Socket.IO CONNECT_ERROR inside an Engine.IO message: refused, not left hanging.
    assert answer.text.startswith("44"), answer.text[:200]
    assert "unauthorized" in answer.text
    log = await asyncio.to_thread(Path(server.log).read_text)
    assert "handler error" not in log
    assert "Traceback" not in log


async def test_socketio_message_over_the_cap_is_refused(server: LiveServer, http: Any) -> None:
    sid = await _engine_session(http)
    response, took = await _send_packet(http, sid, b"40" + b" " * (128 * 1024))
    assert_error(response, 413)
    assert took < WITHIN_S
    response, took = await _send_packet(http, sid, b'40{"token": "\xff\xfe"}')
    assert_error(response, 400)
    assert "UTF-8" in response.json()["error"]["message"]
