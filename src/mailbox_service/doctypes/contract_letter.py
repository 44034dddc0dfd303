"""Contract letters: welcome letters, price changes, terminations and the like."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from mailbox_service.doctypes.base import DocumentType, DocumentView
from mailbox_service.doctypes.fields import Reference

LetterKind = Literal[
    "welcome", "price_change", "termination_confirmation", "meter_reading_request", "general"
]

_KIND_LABELS = {
    "welcome": "Welcome letter",
    "price_change": "Price change",
    "termination_confirmation": "Termination confirmation",
    "meter_reading_request": "Meter reading request",
    "general": "Contract letter",
}


class ContractLetterAttributes(msgspec.Struct, forbid_unknown_fields=True):
    contract_number: Reference
    letter_kind: LetterKind
    effective_date: dt.date | None = None


class ContractLetter(DocumentType):
    name = "contract_letter"
    label = "Contract letter"
    attributes = ContractLetterAttributes
    retention = dt.timedelta(days=365 * 6)
    # Commercial law (HGB 257) keeps business letters for six years, erasure or not.
    legal_retention = True
    # A signed letter is evidence of the contract: write-once until its retention ends.
    immutable_files = True
    # A termination confirmation must reach the customer: unread after five days, it is
    # printed and posted after all.
    print_if_unread_after = dt.timedelta(days=5)

    def acknowledgement_attributes(self) -> dict[str, Any]:
        return {"letter_kind": "termination_confirmation"}

    def default_title(self, attributes: ContractLetterAttributes) -> str:
        return f"{_KIND_LABELS[attributes.letter_kind]} – contract {attributes.contract_number}"

    def summary(self, attributes: ContractLetterAttributes) -> dict[str, Any]:
        return {
            "contract_number": attributes.contract_number,
            "letter_kind": attributes.letter_kind,
            "effective_date": attributes.effective_date.isoformat()
            if attributes.effective_date
            else None,
        }

    def sample_attributes(self) -> dict[str, Any]:
        return {
            "contract_number": "C-100-2044",
            "letter_kind": "price_change",
            "effective_date": "2027-01-01",
        }

    def email_context(self, document: DocumentView) -> dict[str, Any]:
        attrs = self.validate(dict(document.attributes))
        assert isinstance(attrs, ContractLetterAttributes)
        return {
            "summary": self.summary(attrs),
            "contract_number": attrs.contract_number,
            "letter_kind": attrs.letter_kind,
            "effective_date": attrs.effective_date,
        }
