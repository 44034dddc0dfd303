"""Render a type's email from sample attributes, without a database or an SMTP relay.

For template authors (`mailbox-service email preview`): the exact renderer and composer the
worker uses, fed with the plugin's `sample_attributes()` (or attributes given on the command
line), so what the preview shows is what a customer gets.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from mailbox_service.doctypes import DocumentType, DocumentView
from mailbox_service.errors import ConfigurationError, InvalidMetadata
from mailbox_service.notifications.email import EmailRenderer, compose
from mailbox_service.settings import Settings

PreviewFormat = Literal["text", "html", "eml"]
FORMATS: tuple[PreviewFormat, ...] = ("text", "html", "eml")
SAMPLE_ID = "0123456789abcdef0123456789abcdef"
SAMPLE_ACCOUNT = "ACC-1000042"
SAMPLE_ADDRESS = "erika.mustermann@example.org"


def sample_document(
    doctype: DocumentType, attributes: dict[str, Any] | None = None, *, now: dt.datetime
) -> DocumentView:
    """A document of `doctype` as the worker would see it, from sample or given attributes."""
    raw = attributes if attributes is not None else doctype.sample_attributes()
    if raw is None:
        raise ConfigurationError(
            f"document type {doctype.name!r} has no sample_attributes(); pass --attributes"
        )
    try:
        validated = doctype.validate(raw)
    except msgspec.ValidationError as exc:
        raise InvalidMetadata(f"attributes: {exc}", field="attributes") from None
    return DocumentView(
        id=SAMPLE_ID,
        type=doctype.name,
        account_id=SAMPLE_ACCOUNT,
        title=doctype.default_title(validated),
        issued_at=now,
        attributes=msgspec.to_builtins(validated),
    )


def render_preview(
    renderer: EmailRenderer,
    doctype: DocumentType,
    document: DocumentView,
    *,
    locale: str,
    fmt: PreviewFormat,
    settings: Settings,
    recipient_name: str | None = "Erika Mustermann",
    now: dt.datetime,
) -> bytes:
    rendered = renderer.render(doctype, document, locale=locale, recipient_name=recipient_name)
    if fmt == "text":
        return f"Subject: {rendered.subject}\n\n{rendered.text}".encode()
    if fmt == "html":
        return rendered.html.encode()
    message = compose(
        rendered,
        sender=settings.smtp.sender,
        recipient=SAMPLE_ADDRESS,
        recipient_name=recipient_name,
        document_id=document.id,
        account_id=document.account_id,
        portal_url=settings.portal_url,
        now=now,
    )
    return message.as_bytes()
