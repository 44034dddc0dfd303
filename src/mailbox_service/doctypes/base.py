"""What a document type is: the contract between a plugin and the one shared pipeline.

A type declares its attributes schema, how its notifications look, what its email templates get,
whether it may go digitally, how long it is kept and which file types it accepts. The pipeline
never branches on a type's name; it asks the type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import msgspec

PDF = "application/pdf"


class DocumentView(msgspec.Struct, frozen=True):
    """The parts of a stored document a plugin may use to shape its output."""

    id: str
    type: str
    account_id: str
    title: str
    issued_at: dt.datetime
    attributes: Mapping[str, Any]


class DocumentType:
    """Base class of every document type. Subclass it, set the class attributes, register it."""

    name: ClassVar[str]
    """Stable identifier used in metadata (`type`), URLs, template folders."""
    label: ClassVar[str]
    """Human name, e.g. "Invoice"."""
    attributes: ClassVar[type[msgspec.Struct]]
    """msgspec Struct validating `metadata.attributes`; its JSON Schema is published."""
    digital: ClassVar[bool] = True
    """Whether this type may be delivered digitally instead of on paper."""
    retention: ClassVar[dt.timedelta] = dt.timedelta(days=365 * 10)
    """How long documents of this type are kept after `issued_at`."""
    legal_retention: ClassVar[bool] = False
    """Whether a law obliges us to keep documents of this type until `retain_until` even when
    the customer asks to be erased (tax law for invoices, commercial law for business
    letters). False: an erasure deletes them at once. A type must claim this: by default a
    customer's right to erasure wins."""
    immutable_files: ClassVar[bool] = False
    """Whether the file is write-once: stored under S3 Object Lock until `retain_until`, so
    nobody (the service included) can delete or replace it before then."""
    print_if_unread_after: ClassVar[dt.timedelta | None] = None
    """Documents that must be acknowledged: one still unread this long after it was stored
    (`created_at`) goes to print after all (senders/acknowledgement.py); which documents of
    the type need it: `acknowledgement_attributes`. None: reading is never required."""
    content_types: ClassVar[frozenset[str]] = frozenset({PDF})
    """Sniffed content types accepted for the file."""
    sensitive: ClassVar[bool] = False
    """Whether the content (the file) needs a step-up sign-in: a portal token whose `acr` is
    one of MAILBOX_AUTH_STEP_UP_ACR (health or bank data, say). Lists, details and real-time
    events are unaffected; they carry no content."""
    statuses: ClassVar[frozenset[str]] = frozenset()
    """Business statuses a sender may set with `PATCH /v1/documents/{id}` (an invoice's
    `paid`, a shipment's `delivered`); empty: the type has no business status."""
    initial_status: ClassVar[str | None] = None
    """The status a new document starts with (one of `statuses`), or None."""
    settled_statuses: ClassVar[frozenset[str]] = frozenset()
    """Statuses (of `statuses`) in which the customer has nothing left to do, an invoice
    `paid` or `cancelled`: no reminder goes out for a document in one of them."""
    templates_path: ClassVar[Path | None] = None
    """Folder with this type's email templates when they ship outside `templates/email/`
    (a plugin package); None means `templates/email/<template>/`."""

    @property
    def template(self) -> str:
        """Folder under `templates/email/` holding this type's email templates."""
        return self.name

    def validate(self, raw: Any) -> msgspec.Struct:
        """Turn raw JSON attributes into the typed Struct; msgspec errors name the field."""
        return msgspec.convert(raw, self.attributes, strict=True)

    def default_title(self, attributes: Any) -> str:
        """Title shown when the sender gave none."""
        return self.label

    def summary(self, attributes: Any) -> dict[str, Any]:
        """The small object list items and real-time events carry (override per type)."""
        return {}

    def email_context(self, document: DocumentView) -> dict[str, Any]:
        """Values the email templates need beyond the common ones (override per type)."""
        return {"summary": self.summary(self.validate(dict(document.attributes)))}

    def reminder_due(self, attributes: Any) -> dt.date | None:
        """The date the customer must act by (an invoice's due date): the document then gets
        one reminder email MAILBOX_REMINDER_DAYS_BEFORE_DUE days before it, from the type's
        `reminder` templates. None (the default): never reminded. Called at ingest with the
        validated attributes; the date is stored (`reminder.due_at`), so change it only
        together with a migration that recomputes it."""
        return None

    def acknowledgement_attributes(self) -> dict[str, Any]:
        """Attribute values that make a document of this type need acknowledgement (each an
        equality on `attributes.<name>`); empty: every document of the type does. Asked only
        when `print_if_unread_after` is set. A query, not a per-document check, so that the
        acknowledgement pass reads only the documents concerned."""
        return {}

    def sample_attributes(self) -> dict[str, Any] | None:
        """Realistic attributes for `mailbox-service email preview`; None when the type has none."""
        return None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = msgspec.json.schema(self.attributes)
        return schema

    def retain_until(self, issued_at: dt.datetime) -> dt.datetime:
        return issued_at + self.retention
