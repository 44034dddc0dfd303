"""Helpers for the portal API and real-time tests: tokens, and documents ingested over HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from app_fixtures import invoice_metadata, post_document, sample_pdf, unique
from mailbox_service.auth import mint_token
from mailbox_service.settings import Settings

Client = httpx.AsyncClient | AsyncTestClient[Any]


def portal_token(
    settings: Settings, *accounts: str, sub: str = "portal-user", ttl_s: int = 600
) -> str:
    return mint_token(settings.auth, sub, list(accounts), ttl_s=ttl_s)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def letter_metadata(account_id: str, **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "type": "contract_letter",
        "source_ref": unique("ref"),
        "account_id": account_id,
        "attributes": {"contract_number": unique("C"), "letter_kind": "welcome"},
    }
    meta.update(overrides)
    return meta


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def ingest(
    client: Client,
    key: str,
    account_id: str,
    *,
    issued_at: dt.datetime | None = None,
    kind: str = "invoice",
    content: bytes | None = None,
    filename: str = "document.pdf",
) -> str:
    """POST one document (notify off: these tests are about the portal) and return its id."""
    build = invoice_metadata if kind == "invoice" else letter_metadata
    extra: dict[str, Any] = {"notify": False}
    if issued_at is not None:
        extra["issued_at"] = iso(issued_at)
    response = await post_document(
        client, key, build(account_id, **extra), content or sample_pdf(unique("pdf")), filename
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
