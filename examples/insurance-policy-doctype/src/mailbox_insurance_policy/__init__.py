"""An insurer's policy schedule as a mailbox document type.

Everything the service needs to know about the type is declared here; no pipeline code
changes when this package is installed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from mailbox_service.doctypes import DocumentType, DocumentView


class PolicyAttributes(msgspec.Struct, forbid_unknown_fields=True):
    policy_number: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}-[0-9]{6,10}$")]
    product: Literal["home", "car", "liability", "travel"]
    valid_from: dt.date
    annual_premium: Annotated[str, msgspec.Meta(pattern=r"^[0-9]+\.[0-9]{2}$")]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "EUR"


class InsurancePolicy(DocumentType):
    name = "insurance_policy"
    label = "Insurance policy"
    attributes = PolicyAttributes
    retention = dt.timedelta(days=365 * 12)
    # Email templates ship inside this package instead of the service's templates/email/.
    templates_path = Path(__file__).parent / "templates"

    def default_title(self, attributes: PolicyAttributes) -> str:
        return f"{attributes.product.capitalize()} policy {attributes.policy_number}"

    def summary(self, attributes: PolicyAttributes) -> dict[str, Any]:
        return {
            "policy_number": attributes.policy_number,
            "product": attributes.product,
            "valid_from": attributes.valid_from.isoformat(),
        }

    def email_context(self, document: DocumentView) -> dict[str, Any]:
        attrs = self.validate(dict(document.attributes))
        assert isinstance(attrs, PolicyAttributes)
        return {
            "summary": self.summary(attrs),
            "policy_number": attrs.policy_number,
            "product": attrs.product,
            "valid_from": attrs.valid_from,
        }

    def sample_attributes(self) -> dict[str, Any]:
        return {
            "policy_number": "HP-0012345",
            "product": "home",
            "valid_from": "2027-01-01",
            "annual_premium": "312.00",
        }
