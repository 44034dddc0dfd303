"""Bounces reported after the relay accepted an email (relays that report asynchronously).

A permanent (hard) bounce means the customer was not told about the document after all: the
email channel goes from `sent` to `failed` (one compare-and-set, so a bounce reported twice
counts once), the sender gets `document.delivery_failed`, and the print fallback turns the
delivery into print (cause `bounce`) unless the customer has already opened the document.
A document already delivered by print is left alone (no event: the sender prints it anyway).
A transient (soft) bounce, a full mailbox say, is only recorded on the channel
(`soft_bounces`, `last_soft_bounce`): the relay keeps trying, nothing is printed.

A bounce names its email by document id or by the Message-ID we sent it with. Our Message-IDs
are `<document id>.notification@<domain>` (mail/email.py::message_id), so the lookup
is by `_id` plus an equality on the stored `notifications.email.message_id`: no extra index.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from mailbox_service.clock import utcnow
from mailbox_service.errors import Conflict, InvalidMetadata, NotFound
from mailbox_service.senders.email_outcomes import already_read, for_sender
from mailbox_service.senders.event_log import EventLog
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.outbox import ChannelChange
from mailbox_service.types import error_field
from mailbox_service.untrusted import NOT_BLANK

MAX_REASON = 500
MAX_MESSAGE_ID = 998
"""RFC 5322's line limit: no real Message-ID is longer."""
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
_OUR_MESSAGE_ID = re.compile(r"^<([A-Za-z0-9][A-Za-z0-9._:-]{0,63})\.notification@[^<>@\s]+>$")


class BounceReport(msgspec.Struct, kw_only=True):
    """A bounce: which email (`document_id` or `message_id`, exactly one), why, how final."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON, pattern=NOT_BLANK)]
    """The relay's diagnostic, e.g. `550 5.1.1 user unknown`; shown to the sender with email
    addresses masked."""
    document_id: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=ID_PATTERN)] | UnsetType
    ) = UNSET
    """The document whose notification bounced."""
    message_id: (
        Annotated[str, msgspec.Meta(min_length=3, max_length=MAX_MESSAGE_ID)] | UnsetType
    ) = UNSET
    """The bounced email's Message-ID header (with or without the angle brackets)."""
    recipient: Annotated[str, msgspec.Meta(min_length=3, max_length=254)] | UnsetType = UNSET
    """The bounced address, if the relay names it: checked against the address the email went
    to (a mismatch is 409); never stored or shown to the sender."""
    permanent: bool = True
    """Hard bounce (default): the address cannot be reached, print instead. False: a soft
    bounce (mailbox full, try later), only recorded."""


ONE_EMAIL: dict[str, Any] = {"oneOf": [{"required": ["document_id"]}, {"required": ["message_id"]}]}
"""The rule the body's Struct cannot state: it names its email by exactly one of the two."""


class BounceResult(msgspec.Struct, kw_only=True):
    document_id: str
    permanent: bool
    changed: bool
    """Whether this report changed the delivery (email marked failed or print required); false
    for a repeat, a document already delivered by print, and every soft bounce."""
    email_status: str | None
    """The email channel's status after the report."""
    delivery_mode: Literal["digital", "print"]
    print_required: bool
    """Whether this report turned the delivery into print."""


def normalised_message_id(text: str) -> str:
    text = text.strip()
    return text if text.startswith("<") else f"<{text}>"


def document_of_message_id(message_id: str) -> str | None:
    """The document id inside one of our Message-IDs, or None when it is not ours."""
    found = _OUR_MESSAGE_ID.match(message_id)
    return found.group(1) if found else None


def _email_state(doc: Doc) -> dict[str, Any]:
    return dict((doc.get("notifications") or {}).get("email") or {})


def decode_report(body: Any) -> BounceReport:
    """Validate a bounce body; a wrong field is a 422 naming it."""
    if not isinstance(body, dict):
        raise InvalidMetadata("body: expected a JSON object", field="body")
    try:
        report = msgspec.convert(body, BounceReport, strict=True)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc)
        if field == "reason" and "regex" in message:
            message = "must not be blank"
        raise InvalidMetadata(f"{field or 'body'}: {message}", field=field or "body") from None
    _check(report)
    return report


def _check(report: BounceReport) -> None:
    if (report.document_id is UNSET) == (report.message_id is UNSET):
        raise InvalidMetadata(
            "document_id: give exactly one of document_id and message_id", field="document_id"
        )
    if not report.reason.strip():
        raise InvalidMetadata("reason: must not be blank", field="reason")


class BounceIntake:
    def __init__(
        self,
        documents: DocumentStatusStore,
        events: EventLog,
        print_fallback: PrintFallback,
    ) -> None:
        self.documents = documents
        self.events = events
        self.print_fallback = print_fallback

    async def find(self, report: BounceReport) -> Doc:
        """The bounced document; NotFound when no email of ours matches."""
        if not isinstance(report.message_id, str):
            doc = await self.documents.get(str(report.document_id))
            if doc is None:
                raise NotFound(f"no document {report.document_id!r}")
            return doc
        message_id = normalised_message_id(report.message_id)
        document_id = document_of_message_id(message_id)
        doc = None
        if document_id is not None:
            doc = await self.documents.with_message_id(document_id, message_id)
        if doc is None:
            raise NotFound("no notification email was sent with this message_id")
        return doc

    async def report(self, report: BounceReport) -> BounceResult:
        """Apply a report (decoded with `decode_report`)."""
        doc = await self.find(report)
        sent_to = str((doc.get("delivery") or {}).get("email") or "")
        recipient = report.recipient
        if isinstance(recipient, str) and recipient.strip().lower() != sent_to.lower():
            raise Conflict(
                "recipient: not the address this document's notification was sent to",
                field="recipient",
            )
        reason = report.reason.strip()
        if not report.permanent:
            return await self._soft(doc, reason)
        return await self._hard(doc, reason)

    async def _soft(self, doc: Doc, reason: str) -> BounceResult:
        now = utcnow()
        # No version bump: a soft bounce changes no status, so a worker holding the channel
        # (a resend in flight) must still be able to record its outcome.
        change = ChannelChange(
            set={"last_soft_bounce": {"at": now, "reason": reason}}, inc={"soft_bounces": 1}
        )
        after = await self.documents.update_email_channel(doc["_id"], change.update("email"))
        return _result(after or doc, permanent=False, changed=False, printed=False)

    async def _hard(self, doc: Doc, reason: str) -> BounceResult:
        now = utcnow()
        change = ChannelChange(
            set={"status": "failed", "error": f"bounced: {reason}", "at": now, "bounced_at": now},
            inc={"version": 1},
        )
        # Only a sent email of a digital delivery: one on paper has nothing to fall back to.
        failed = await self.documents.fail_sent_email(doc["_id"], change.update("email"))
        if failed is not None:
            await self.events.record(
                failed,
                "document.delivery_failed",
                {"reason": for_sender(reason), "cause": "bounce"},
            )
            doc = failed
        printed = False
        if not already_read(doc):
            printed = await self.print_fallback.require_print(
                str(doc["_id"]), for_sender(reason), "bounce"
            )
        current = await self.documents.get(doc["_id"]) or doc
        return _result(
            current, permanent=True, changed=failed is not None or printed, printed=printed
        )


def _result(doc: Doc, *, permanent: bool, changed: bool, printed: bool) -> BounceResult:
    mode = (doc.get("delivery") or {}).get("mode")
    return BounceResult(
        document_id=str(doc["_id"]),
        permanent=permanent,
        changed=changed,
        email_status=_email_state(doc).get("status"),
        delivery_mode="print" if mode == "print" else "digital",
        print_required=printed,
    )
