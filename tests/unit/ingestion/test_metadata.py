"""Metadata parsing: which errors are 400 and which are 422, and the field each names."""

from __future__ import annotations

from typing import Any

import pytest

from mailbox_service.doctypes import load_registry
from mailbox_service.errors import BadRequest, InvalidMetadata
from mailbox_service.ingestion.delivery import decide_delivery
from mailbox_service.ingestion.schemas import DocumentMetadata, convert_metadata, decode_metadata
from mailbox_service.storage.accounts import Account


def _meta(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "invoice",
        "source_ref": "r1",
        "account_id": "A1",
        "attributes": {},
    }
    return base | changes


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'"x"'])
def test_not_a_json_object_is_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_metadata(raw)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_ref": "has space"}, "source_ref"),
        ({"notify": "yes"}, "notify"),
        ({"recipient": {"locale": "german"}}, "recipient.locale"),
        ({"extra": 1}, "extra"),
        ({"recipient": {"extra": 1}}, "recipient.extra"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidMetadata) as info:
        convert_metadata(_meta(**changes))
    assert (info.value.field or "metadata") == field


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(InvalidMetadata) as info:
        load_registry().get("fax")
    assert info.value.field == "type"
    assert "invoice" in str(info.value)


def _decide(
    paperless: bool,
    account_email: str | None,
    recipient: dict[str, Any] | None,
    doctype: str = "invoice",
) -> tuple[str, str | None]:
    meta: DocumentMetadata = convert_metadata(_meta(type=doctype, recipient=recipient))
    account = Account("A1", paperless=paperless, email=account_email)
    decision = decide_delivery(load_registry().get(doctype), meta, account)
    return decision.mode, decision.email


def test_delivery_rules() -> None:
    assert _decide(True, "a@example.org", None) == ("digital", "a@example.org")
    assert _decide(True, "a@example.org", {"email": "b@example.org"}) == (
        "digital",
        "b@example.org",
    )
    assert _decide(False, "a@example.org", None)[0] == "print"
    assert _decide(True, None, None) == ("print", None)
    no_account = decide_delivery(load_registry().get("invoice"), convert_metadata(_meta()), None)
    assert (no_account.mode, no_account.reason) == ("print", "account has no paperless consent")
