"""Bad input to POST /v1/documents: the right status, the field named, nothing left behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import invoice_metadata, post_document, sample_pdf, unique
from mailbox_service.asgi import create_app
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services


async def _state(services: Services, source_ref: str) -> tuple[int, int]:
    docs = await services.database.documents.count_documents({"source_ref": source_ref})
    blobs = await asyncio.to_thread(
        lambda: sum(
            1 for _ in services.blobs.client.list_objects(services.blobs.bucket, recursive=True)
        )
    )
    return docs, blobs


@pytest.fixture
async def nothing_left(services: Services) -> AsyncIterator[dict[str, Any]]:
    """Asserts after the test that no document and no blob was added."""
    holder: dict[str, Any] = {"source_ref": unique("ref")}
    _, blobs_before = await _state(services, holder["source_ref"])
    yield holder
    docs, blobs_after = await _state(services, holder["source_ref"])
    assert docs == 0
    assert blobs_after == blobs_before


def _error(response: Any) -> dict[str, Any]:
    return response.json()["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Basic abc", 401), ("Bearer mbx_nope_nope", 401)],
)
async def test_missing_or_unknown_key_is_401(
    client: Any, header: str | None, status: int, nothing_left: dict[str, Any]
) -> None:
    headers = {"Authorization": header} if header else {}
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    response = await client.post(
        "/v1/documents",
        files={"metadata": (None, json.dumps(meta)), "file": ("a.pdf", sample_pdf())},
        headers=headers,
    )
    assert response.status_code == status
    assert response.headers["www-authenticate"] == "Bearer"


async def test_revoked_key_is_401(
    client: Any, services: Services, nothing_left: dict[str, Any]
) -> None:
    key, secret = await services.api_keys.create("soon-revoked", ["ingest"])
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    assert await services.api_keys.revoke(key.key_id)
    response = await post_document(client, secret, meta)
    assert response.status_code == 401


async def test_key_without_ingest_scope_is_403(
    client: Any, admin_key: str, nothing_left: dict[str, Any]
) -> None:
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    response = await post_document(client, admin_key, meta)
    assert response.status_code == 403
    assert "ingest" in _error(response)["message"]


async def test_broken_json_is_400(
    client: Any, ingest_key: str, nothing_left: dict[str, Any]
) -> None:
    response = await post_document(client, ingest_key, '{"type": "invoice",')
    assert response.status_code == 400
    assert _error(response)["field"] == "metadata"


async def test_not_multipart_is_400(client: Any, ingest_key: str) -> None:
    response = await client.post(
        "/v1/documents",
        content=b"{}",
        headers={"Authorization": f"Bearer {ingest_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["field"] == "Content-Type"


async def test_truncated_multipart_is_400(client: Any, ingest_key: str) -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{}\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        b"%PDF-1.4 cut"
    )
    response = await client.post(
        "/v1/documents",
        content=body,
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "multipart/form-data; boundary=XyZ",
        },
    )
    assert response.status_code == 400
    assert _error(response)["field"] == "file"


async def test_missing_file_part_is_400(client: Any, ingest_key: str) -> None:
    response = await client.post(
        "/v1/documents",
        files={"metadata": (None, json.dumps(invoice_metadata("A1")))},
        headers={"Authorization": f"Bearer {ingest_key}"},
    )
    assert response.status_code == 400
    assert _error(response)["field"] == "file"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "postcard"}, "type"),
        (
            {"attributes": {"invoice_number": "1", "total_amount": "1.00", "currency": "EUR"}},
            "attributes.due_date",
        ),
        (
            {
                "attributes": {
                    "invoice_number": "1",
                    "total_amount": "1,00",
                    "currency": "EUR",
                    "due_date": "2026-01-01",
                }
            },
            "attributes.total_amount",
        ),
        (
            {
                "attributes": {
                    "invoice_number": "1",
                    "total_amount": "1.00",
                    "currency": "euro",
                    "due_date": "2026-01-01",
                }
            },
            "attributes.currency",
        ),
        (
            {
                "attributes": {
                    "invoice_number": "1",
                    "total_amount": "1.00",
                    "currency": "EUR",
                    "due_date": "2026-02-30",
                }
            },
            "attributes.due_date",
        ),
        (
            {
                "attributes": {
                    "invoice_number": "1",
                    "total_amount": "1.00",
                    "currency": "EUR",
                    "due_date": "2026-01-01",
                    "billing_period": {"start": "2026-02-01", "end": "2026-01-01"},
                }
            },
            "attributes.billing_period",
        ),
        (
            {
                "attributes": {
                    "invoice_number": "1",
                    "total_amount": "1.00",
                    "currency": "EUR",
                    "due_date": "2026-01-01",
                    "surprise": 1,
                }
            },
            "attributes.surprise",
        ),
        ({"account_id": ""}, "account_id"),
        ({"issued_at": "2026-01-01T00:00:00"}, "issued_at"),
        ({"recipient": {"email": "eve@example.org\r\nBcc: all@example.org"}}, "recipient.email"),
        ({"recipient": {"email": "not-an-address"}}, "recipient.email"),
        ({"title": "two\nlines"}, "title"),
    ],
)
async def test_invalid_metadata_is_422_naming_the_field(
    client: Any,
    ingest_key: str,
    change: dict[str, Any],
    field: str,
    nothing_left: dict[str, Any],
) -> None:
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    meta.update(change)
    response = await post_document(client, ingest_key, meta)
    assert response.status_code == 422, response.text
    assert _error(response)["field"] == field
    assert field in _error(response)["message"]


async def test_missing_top_level_field_is_named(client: Any, ingest_key: str) -> None:
    meta = invoice_metadata("A1")
    del meta["source_ref"]
    response = await post_document(client, ingest_key, meta)
    assert response.status_code == 422
    assert _error(response)["field"] == "source_ref"


async def test_executable_named_pdf_is_415(
    client: Any, ingest_key: str, nothing_left: dict[str, Any]
) -> None:
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    response = await post_document(
        client, ingest_key, meta, b"MZ\x90\x00" + b"\x00" * 500, "invoice.pdf"
    )
    assert response.status_code == 415
    assert "application/x-msdownload" in _error(response)["message"]


async def test_empty_file_is_422(
    client: Any, ingest_key: str, nothing_left: dict[str, Any]
) -> None:
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    response = await post_document(client, ingest_key, meta, b"")
    assert response.status_code == 422
    assert _error(response)["field"] == "file"


@pytest.fixture(scope="module")
async def small_limit_client(settings: Settings, services: Services) -> AsyncIterator[Any]:
    limits = msgspec.structs.replace(settings.limits, max_upload_bytes=64 * 1024)
    small = msgspec.structs.replace(settings, limits=limits)
    async with AsyncTestClient(app=create_app(small)) as test_client:
        yield test_client


async def test_file_over_the_limit_is_413(
    small_limit_client: Any, ingest_key: str, nothing_left: dict[str, Any]
) -> None:
    meta = invoice_metadata("A1", source_ref=nothing_left["source_ref"])
    response = await post_document(
        small_limit_client, ingest_key, meta, sample_pdf(padding=200_000)
    )
    assert response.status_code == 413
    assert _error(response)["field"] == "file"


async def test_declared_length_over_the_limit_is_refused_before_reading(
    small_limit_client: Any, ingest_key: str
) -> None:
    response = await small_limit_client.post(
        "/v1/documents",
        content=b"x" * 10,
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(500 * 1024 * 1024),
        },
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\eve\\bill.pdf", "bill.pdf"),
        ("a<b>c|d?.pdf", "a_b_c_d_.pdf"),
        ("..", "document.pdf"),
    ],
)
async def test_unsafe_file_names_are_stored_sanitised(
    client: Any, ingest_key: str, services: Services, sent: str, stored: str
) -> None:
    response = await post_document(client, ingest_key, invoice_metadata("A1"), sample_pdf(), sent)
    assert response.status_code == 201, response.text
    doc = await services.documents.record(response.json()["id"])
    assert doc is not None
    assert doc["blob"]["filename"] == stored


async def test_control_characters_in_a_raw_file_name_are_replaced(
    client: Any, ingest_key: str, services: Services
) -> None:
    # httpx would percent-encode these; a sender's hand-made body may not.
    meta = json.dumps(invoice_metadata("A1")).encode()
    body = (
        b'--B0\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n' + meta + b"\r\n"
        b'--B0\r\nContent-Disposition: form-data; name="file"; filename="in\x01voice\x1b.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + sample_pdf() + b"\r\n--B0--\r\n"
    )
    response = await client.post(
        "/v1/documents",
        content=body,
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "multipart/form-data; boundary=B0",
        },
    )
    assert response.status_code == 201, response.text
    doc = await services.documents.record(response.json()["id"])
    assert doc is not None
    assert doc["blob"]["filename"] == "in_voice_.pdf"


def _raw_body(*parts: tuple[bytes, bytes]) -> bytes:
    body = b""
    for headers, content in parts:
        body += b"--B1\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--B1--\r\n"


_META = b'Content-Disposition: form-data; name="metadata"'
_FILE = b'Content-Disposition: form-data; name="file"; filename="a.pdf"'


@pytest.mark.parametrize(
    ("parts", "status", "field"),
    [
        ([(_META, b"{}"), (_META, b"{}"), (_FILE, b"%PDF-1.4")], 400, "metadata"),
        ([(_FILE, b"%PDF-1.4"), (_FILE, b"%PDF-1.4")], 400, "file"),
        ([(b"Content-Type: text/plain", b"x")], 400, "multipart"),
        ([(_META, b" " * (300 * 1024))], 413, "metadata"),
    ],
)
async def test_malformed_parts_are_refused_naming_the_part(
    client: Any, ingest_key: str, parts: list[tuple[bytes, bytes]], status: int, field: str
) -> None:
    response = await client.post(
        "/v1/documents",
        content=_raw_body(*parts),
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "multipart/form-data; boundary=B1",
        },
    )
    assert response.status_code == status, response.text
    assert _error(response)["field"] == field


async def test_unknown_parts_are_ignored(client: Any, ingest_key: str) -> None:
    meta = json.dumps(invoice_metadata("A1")).encode()
    body = _raw_body(
        (b'Content-Disposition: form-data; name="comment"', b"printed by ERP"),
        (_META, meta),
        (_FILE, sample_pdf()),
    )
    response = await client.post(
        "/v1/documents",
        content=body,
        headers={
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "multipart/form-data; boundary=B1",
        },
    )
    assert response.status_code == 201, response.text
