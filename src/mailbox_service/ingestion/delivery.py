"""Digital or print: the answer the sender gets at once, so it knows whether to print."""

from __future__ import annotations

from dataclasses import dataclass

from mailbox_service.doctypes import DocumentType
from mailbox_service.ingestion.schemas import Delivery, DocumentMetadata
from mailbox_service.storage.accounts import Account


@dataclass(frozen=True)
class DeliveryDecision:
    mode: Delivery
    reason: str | None
    email: str | None
    locale: str | None


def decide_delivery(
    doctype: DocumentType, metadata: DocumentMetadata, account: Account | None
) -> DeliveryDecision:
    recipient = metadata.recipient
    email = (recipient.email if recipient else None) or (account.email if account else None)
    locale = (recipient.locale if recipient else None) or (account.locale if account else None)
    if not doctype.digital:
        return DeliveryDecision("print", "document type is not delivered digitally", email, locale)
    if account is None or not account.paperless:
        return DeliveryDecision("print", "account has no paperless consent", email, locale)
    if not email:
        return DeliveryDecision("print", "no email address is known for the account", None, locale)
    return DeliveryDecision("digital", None, email, locale)
