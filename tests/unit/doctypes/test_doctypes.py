"""The registry and the built-in types' schemas and summaries."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry, DocumentView, load_registry
from mailbox_service.errors import ConfigurationError


def test_builtins_are_registered_in_name_order() -> None:
    assert load_registry(include_entry_points=False).names() == [
        "contract_letter",
        "invoice",
        "shipment_document",
    ]


def test_duplicate_and_malformed_names_fail_fast() -> None:
    registry = load_registry(include_entry_points=False)

    class Again(DocumentType):
        name = "invoice"
        label = "Another invoice"
        attributes = msgspec.defstruct("A", [])

    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.register(Again())

    class Bad(DocumentType):
        name = "Not Valid"
        label = "x"
        attributes = msgspec.defstruct("B", [])

    with pytest.raises(ConfigurationError, match="must match"):
        DocumentTypeRegistry([Bad()])


@pytest.mark.parametrize(
    ("name", "attributes", "title", "summary_key"),
    [
        (
            "invoice",
            {
                "invoice_number": "INV-1",
                "total_amount": "84.20",
                "currency": "EUR",
                "due_date": "2026-12-15",
            },
            "Invoice INV-1",
            "due_date",
        ),
        (
            "contract_letter",
            {"contract_number": "C-9", "letter_kind": "price_change"},
            "Price change – contract C-9",
            "letter_kind",
        ),
        (
            "shipment_document",
            {"shipment_number": "S-1", "document_kind": "delivery_note", "order_reference": "O-7"},
            "Delivery note – shipment S-1",
            "order_reference",
        ),
    ],
)
def test_builtin_types_shape_titles_summaries_and_email_context(
    name: str, attributes: dict[str, str], title: str, summary_key: str
) -> None:
    doctype = load_registry(include_entry_points=False).get(name)
    typed = doctype.validate(attributes)
    assert doctype.default_title(typed) == title
    summary = doctype.summary(typed)
    assert summary_key in summary
    view = DocumentView("d1", name, "A1", title, dt.datetime.now(dt.UTC), attributes)
    context = doctype.email_context(view)
    assert context["summary"] == summary
    assert doctype.json_schema()["$ref"].endswith(doctype.attributes.__name__)
    assert doctype.retain_until(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)) > dt.datetime(
        2022, 1, 1, tzinfo=dt.UTC
    )


def test_letter_kind_is_a_closed_list() -> None:
    doctype = load_registry(include_entry_points=False).get("contract_letter")
    with pytest.raises(msgspec.ValidationError, match="letter_kind"):
        doctype.validate({"contract_number": "C-1", "letter_kind": "love_letter"})
