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
from mailbox_service.mail.email import NOTIFICATION, EmailRenderer, compose
from mailbox_service.settings import Settings

PreviewFormat = Literal["text", "html", "eml"]
KINDS = (NOTIFICATION, "reminder")
"""The emails a document can send: its notification, and (types with a due date) a reminder."""
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


def reminder_values(
    doctype: DocumentType, document: DocumentView, days_left: int
) -> dict[str, Any]:
    """What a reminder pass adds to the context: the due date (the type's, or `days_left`
    from now for a type without one) and the days left, as the pass computes them."""
    due = doctype.reminder_due(doctype.validate(dict(document.attributes)))
    if due is None:
        due = document.issued_at.date() + dt.timedelta(days=days_left)
    return {"due_on": due, "days_left": days_left}


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
    kind: str = NOTIFICATION,
) -> bytes:
    extra = (
        None
        if kind == NOTIFICATION
        else reminder_values(doctype, document, settings.reminder.days_before_due)
    )
    rendered = renderer.render(
        doctype, document, locale=locale, recipient_name=recipient_name, kind=kind, extra=extra
    )
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
        kind=kind,
    )
    return message.as_bytes()
