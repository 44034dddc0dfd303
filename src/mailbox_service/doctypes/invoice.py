"""Invoices: the amount and due date are what a customer wants to see first."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import msgspec

from mailbox_service.doctypes.base import DocumentType, DocumentView
from mailbox_service.doctypes.fields import CurrencyCode, Money, Reference


class BillingPeriod(msgspec.Struct, forbid_unknown_fields=True):
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("`end` must not be before `start`")


class InvoiceAttributes(msgspec.Struct, forbid_unknown_fields=True):
    invoice_number: Reference
    total_amount: Money
    currency: CurrencyCode
    due_date: dt.date
    billing_period: BillingPeriod | None = None


class Invoice(DocumentType):
    name = "invoice"
    label = "Invoice"
    attributes = InvoiceAttributes
    # Tax law in most of our markets asks for ten years.
    retention = dt.timedelta(days=365 * 10 + 3)
    # Tax law also asks that the invoice stays unaltered for as long.
    immutable_files = True
    # Tax law (AO 147, UStG 14b) keeps them for the whole period, erasure or not.
    legal_retention = True
    # Overdue is the sender's word, not ours: its ERP knows about payment plans and disputes.
    statuses = frozenset({"open", "paid", "cancelled", "overdue"})
    initial_status = "open"
    # Nothing is owed any more: no reminder.
    settled_statuses = frozenset({"paid", "cancelled"})

    def default_title(self, attributes: InvoiceAttributes) -> str:
        return f"Invoice {attributes.invoice_number}"

    def summary(self, attributes: InvoiceAttributes) -> dict[str, Any]:
        return {
            "invoice_number": attributes.invoice_number,
            "total_amount": attributes.total_amount,
            "currency": attributes.currency,
            "due_date": attributes.due_date.isoformat(),
        }

    def reminder_due(self, attributes: InvoiceAttributes) -> dt.date:
        return attributes.due_date

    def sample_attributes(self) -> dict[str, Any]:
        return {
            "invoice_number": "INV-2026-000123",
            "total_amount": "1284.20",
            "currency": "EUR",
            "due_date": "2026-12-15",
            "billing_period": {"start": "2026-11-01", "end": "2026-11-30"},
        }

    def email_context(self, document: DocumentView) -> dict[str, Any]:
        attrs = self.validate(dict(document.attributes))
        assert isinstance(attrs, InvoiceAttributes)
        return {
            "summary": self.summary(attrs),
            "invoice_number": attrs.invoice_number,
            "amount": Decimal(attrs.total_amount),
            "currency": attrs.currency,
            "due_date": attrs.due_date,
            "billing_period": attrs.billing_period,
        }
