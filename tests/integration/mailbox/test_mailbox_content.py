"""`GET /v1/mailbox/documents/{id}/content`: streaming, ranges, conditional requests, headers."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import sample_pdf, unique
from mailbox_fixtures import bearer, ingest, portal_token
from mailbox_service.mailbox.content import (
    UNSATISFIABLE,
    ByteRange,
    content_disposition,
    parse_range,
    safe_filename,
)
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services

PDF = sample_pdf("content test", padding=300_000)  # ~300 KB: more than one 256 KiB chunk


@pytest.fixture(scope="module")
async def stored(
    client: AsyncTestClient[Any], settings: Settings, ingest_key: str
) -> dict[str, Any]:
    account = unique("acct")
    doc_id = await ingest(
        client, ingest_key, account, content=PDF, filename="../../Rechnung März 2026.pdf"
    )
    return {
        "url": f"/v1/mailbox/documents/{doc_id}/content",
        "id": doc_id,
        "headers": bearer(portal_token(settings, account)),
        "etag": f'"{hashlib.sha256(PDF).hexdigest()}"',
    }


async def test_whole_file_with_safe_headers(
    client: AsyncTestClient[Any], stored: dict[str, Any]
) -> None:
    response = await client.get(stored["url"], headers=stored["headers"])
    assert response.status_code == 200
    assert response.content == PDF
    headers = response.headers
    assert headers["content-type"] == "application/pdf"
    assert headers["content-length"] == str(len(PDF))
    assert headers["etag"] == stored["etag"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["accept-ranges"] == "bytes"
    disposition = headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''" in disposition
    exact = unquote(disposition.split("filename*=UTF-8''", 1)[1])
    assert exact == "Rechnung März 2026.pdf"  # no path
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii()
    assert "/" not in fallback

    inline = await client.get(
        stored["url"], params={"disposition": "inline"}, headers=stored["headers"]
    )
    assert inline.headers["content-disposition"].startswith("inline; ")
    bad = await client.get(stored["url"], params={"disposition": "evil"}, headers=stored["headers"])
    assert bad.status_code == 400


async def test_if_none_match_gives_304(
    client: AsyncTestClient[Any], stored: dict[str, Any]
) -> None:
    for tag in (stored["etag"], f'"other", W/{stored["etag"]}', "*"):
        response = await client.get(
            stored["url"], headers={**stored["headers"], "If-None-Match": tag}
        )
        assert response.status_code == 304, tag
        assert response.content == b""
        assert response.headers["etag"] == stored["etag"]
    changed = await client.get(
        stored["url"], headers={**stored["headers"], "If-None-Match": '"old"'}
    )
    assert changed.status_code == 200


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(PDF) - 1),
        ("bytes=-500", len(PDF) - 500, len(PDF) - 1),
        ("bytes=262000-263000", 262000, 263000),  # across the 256 KiB chunk boundary
        (f"bytes=10-{len(PDF) * 2}", 10, len(PDF) - 1),  # end clipped to the file
    ],
)
async def test_single_range_is_206(
    client: AsyncTestClient[Any], stored: dict[str, Any], header: str, start: int, end: int
) -> None:
    response = await client.get(stored["url"], headers={**stored["headers"], "Range": header})
    assert response.status_code == 206
    assert response.content == PDF[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(PDF)}"
    assert response.headers["content-length"] == str(end - start + 1)


async def test_unsatisfiable_range_is_416(
    client: AsyncTestClient[Any], stored: dict[str, Any]
) -> None:
    response = await client.get(
        stored["url"], headers={**stored["headers"], "Range": f"bytes={len(PDF)}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(PDF)}"
    assert response.json()["error"]["field"] == "range"


@pytest.mark.parametrize(
    "extra",
    [
        {"Range": "bytes=0-1,5-6"},  # several ranges: we send the whole file
        {"Range": "pages=1-2"},
        {"Range": "bytes=0-99", "If-Range": '"stale-etag"'},
    ],
)
async def test_ranges_we_do_not_serve_give_the_whole_file(
    client: AsyncTestClient[Any], stored: dict[str, Any], extra: dict[str, str]
) -> None:
    response = await client.get(stored["url"], headers={**stored["headers"], **extra})
    assert response.status_code == 200
    assert response.content == PDF


async def test_first_download_is_recorded_once(
    client: AsyncTestClient[Any], settings: Settings, services: Services, ingest_key: str
) -> None:
    account = unique("acct")
    doc_id = await ingest(client, ingest_key, account)
    headers = bearer(portal_token(settings, account))
    url = f"/v1/mailbox/documents/{doc_id}"
    assert (await client.get(url, headers=headers)).json()["first_downloaded_at"] is None
    assert (await client.get(f"{url}/content", headers=headers)).status_code == 200
    first = (await client.get(url, headers=headers)).json()["first_downloaded_at"]
    assert first is not None
    assert (await client.get(f"{url}/content", headers=headers)).status_code == 200
    assert (await client.get(url, headers=headers)).json()["first_downloaded_at"] == first


async def test_missing_blob_is_a_clean_503(
    client: AsyncTestClient[Any], settings: Settings, services: Services, ingest_key: str
) -> None:
    account = unique("acct")
    doc_id = await ingest(client, ingest_key, account)
    stored = await services.documents.record(doc_id)
    assert stored is not None
    await services.blobs.delete(stored["blob"]["key"], bypass_governance=True)
    response = await client.get(
        f"/v1/mailbox/documents/{doc_id}/content", headers=bearer(portal_token(settings, account))
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert (await services.documents.record(doc_id))["first_downloaded_at"] is None  # type: ignore[index]


# --- the parsing behind it -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, ByteRange(0, 0, 10)),
        ("bytes=-20", 10, ByteRange(0, 9, 10)),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=5-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=a-b", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("C:\\Users\\x\\bill.pdf", "bill.pdf"),
        ("evil\r\nX-Injected: 1.pdf", "evilX-Injected: 1.pdf"),
        ("...", "document-x.pdf"),
        ('say "hi".pdf', "say 'hi'.pdf"),
        ("noextension", "noextension.pdf"),
        ("a" * 400 + ".pdf", "a" * 150 + ".pdf"),
    ],
)
def test_safe_filename(filename: str, expected: str) -> None:
    assert safe_filename("x", "Invoice 1", filename, "application/pdf") == expected


def test_content_disposition_never_breaks_out_of_its_quotes() -> None:
    value = content_disposition('a";b=c\\ é.pdf')
    assert (
        value
        == "attachment; filename=\"a__b_c_ _.pdf\"; filename*=UTF-8''a%22%3Bb%3Dc%5C%20%C3%A9.pdf"
    )
