"""Shipment documents: waybills, delivery notes, customs papers, proofs of delivery."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from mailbox_service.doctypes.base import DocumentType, DocumentView
from mailbox_service.doctypes.fields import Reference

ShipmentKind = Literal["waybill", "delivery_note", "customs_declaration", "proof_of_delivery"]


class ShipmentDocumentAttributes(msgspec.Struct, forbid_unknown_fields=True):
    shipment_number: Reference
    document_kind: ShipmentKind
    order_reference: Reference | None = None


class ShipmentDocument(DocumentType):
    name = "shipment_document"
    label = "Shipment document"
    attributes = ShipmentDocumentAttributes
    retention = dt.timedelta(days=365 * 3)
    # The shipment's status: every document of a shipment (waybill, delivery note, proof of
    # delivery) shows where the goods are.
    statuses = frozenset(
        {"created", "in_transit", "out_for_delivery", "delivered", "delivery_failed", "returned"}
    )
    initial_status = "created"

    def default_title(self, attributes: ShipmentDocumentAttributes) -> str:
        kind = attributes.document_kind.replace("_", " ").capitalize()
        return f"{kind} – shipment {attributes.shipment_number}"

    def summary(self, attributes: ShipmentDocumentAttributes) -> dict[str, Any]:
        return {
            "shipment_number": attributes.shipment_number,
            "document_kind": attributes.document_kind,
            "order_reference": attributes.order_reference,
        }

    def sample_attributes(self) -> dict[str, Any]:
        return {
            "shipment_number": "SHP-77001234",
            "document_kind": "delivery_note",
            "order_reference": "ORD-5512",
        }

    def email_context(self, document: DocumentView) -> dict[str, Any]:
        attrs = self.validate(dict(document.attributes))
        assert isinstance(attrs, ShipmentDocumentAttributes)
        return {
            "summary": self.summary(attrs),
            "shipment_number": attrs.shipment_number,
            "document_kind": attrs.document_kind,
            "order_reference": attrs.order_reference,
        }
