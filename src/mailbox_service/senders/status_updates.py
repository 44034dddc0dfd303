"""Business status updates from the sender: `PATCH /v1/documents/{id}` (or by source_ref).

The sender reports `{"status", "status_at"}`; `status_at` is the time in the sender's world
(its ERP's clock). The document keeps the newest report: one compare-and-set applies an update
only when no report with an equal or later `status_at` is stored, so updates that arrive out
of order (a retry of an old sync run, two sync runs overlapping) never go backwards, and a
repeated update changes nothing. Outcomes:

  changed    the status is now a different one: `document.status_changed` is recorded for
             the sender, the change is audited and open inboxes get `document.updated`;
  unchanged  the status already was this one (a repeat, or a newer `status_at` for the same
             status, which is stored): nothing is told;
  stale      a report with an equal or later `status_at` is stored: nothing is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import DependencyUnavailable, InvalidMetadata
from mailbox_service.log import get_logger
from mailbox_service.realtime.emitter import RealtimeEmitter
from mailbox_service.senders.event_log import EventLog
from mailbox_service.senders.status import DocumentStatus
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.types import error_field

log = get_logger(__name__)

MAX_FUTURE = dt.timedelta(minutes=10)
"""How far ahead of our clock a `status_at` may be: clock skew, not more. A time far in the
future would block every later update until that time."""

Outcome = Literal["changed", "unchanged", "stale"]


class StatusUpdate(msgspec.Struct, frozen=True):
    """Body of a status update."""

    status: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=64,
            description="One of the type's statuses (`GET /v1/document-types`, `statuses`).",
        ),
    ]
    status_at: Annotated[
        dt.datetime,
        msgspec.Meta(
            tz=True,
            description="When the status became true in your system: RFC 3339 with offset.",
        ),
    ]


class StatusUpdateResult(msgspec.Struct, frozen=True):
    """What the update did, and the document as it now is."""

    outcome: Annotated[
        Outcome,
        msgspec.Meta(
            description="`changed`: a new status; `unchanged`: it already had this status; "
            "`stale`: a report with an equal or later `status_at` is stored, nothing changed."
        ),
    ]
    document: DocumentStatus


class Applied(msgspec.Struct, frozen=True):
    outcome: Outcome
    document: Doc
    previous: str | None


def decode_update(body: Any, *, now: dt.datetime | None = None) -> StatusUpdate:
    """Validate a PATCH body; a wrong field is a 422 naming it."""
    if not isinstance(body, dict):
        raise InvalidMetadata("body: expected a JSON object", field="body")
    try:
        update = msgspec.convert(body, StatusUpdate, strict=True)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc)
        if field == "status_at" and "timezone" in message.lower():
            message = "needs a UTC offset, e.g. 2026-11-30T08:00:00Z or +01:00"
        raise InvalidMetadata(f"{field or 'body'}: {message}", field=field or "body") from None
    at = _millis(update.status_at)
    if at > (now or utcnow()) + MAX_FUTURE:
        raise InvalidMetadata(
            f"status_at: {at.isoformat()} is more than {int(MAX_FUTURE.total_seconds() // 60)} "
            "minutes ahead of the server's clock",
            field="status_at",
        )
    return StatusUpdate(status=update.status, status_at=at)


def _millis(at: dt.datetime) -> dt.datetime:
    """UTC, cut to milliseconds: what MongoDB stores, so a repeat compares equal."""
    at = at.astimezone(dt.UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


class StatusUpdates:
    def __init__(
        self,
        documents: DocumentStatusStore,
        registry: DocumentTypeRegistry,
        events: EventLog,
        realtime: RealtimeEmitter,
    ) -> None:
        self.documents = documents
        self.registry = registry
        self.events = events
        self.realtime = realtime

    def check(self, document: Doc, update: StatusUpdate) -> None:
        """422 naming `status` when the document's type does not know it."""
        doctype = self.registry.get(document["type"])
        if not doctype.statuses:
            raise InvalidMetadata(
                f"status: {doctype.name} documents have no business status", field="status"
            )
        if update.status not in doctype.statuses:
            allowed = ", ".join(sorted(doctype.statuses))
            raise InvalidMetadata(
                f"status: {update.status[:64]!r} is not a status of {doctype.name} "
                f"(allowed: {allowed})",
                field="status",
            )

    async def apply(self, document: Doc, update: StatusUpdate) -> Applied:
        """Apply `update` to `document` (a stored document of the caller's source)."""
        self.check(document, update)
        at = update.status_at
        before = await self.documents.set_status_if_newer(
            document["_id"], document["source"], update.status, at, utcnow()
        )
        if before is None:
            current = await self.documents.get(document["_id"]) or document
            repeat = current.get("status") == update.status and current.get("status_at") == at
            return Applied(
                outcome="unchanged" if repeat else "stale",
                document=current,
                previous=current.get("status"),
            )
        previous = before.get("status")
        after = {**before, "status": update.status, "status_at": at}
        if previous == update.status:
            return Applied(outcome="unchanged", document=after, previous=previous)
        await self.events.record(
            after,
            "document.status_changed",
            {"status": update.status, "previous": previous, "status_at": at},
        )
        try:
            await self.realtime.emit_updated(after)
        except DependencyUnavailable as exc:
            # The status is stored; open inboxes show it when they next load the document.
            log.warning("realtime.emit_failed", document_id=after["_id"], error=str(exc))
        log.info(
            "document.status_changed",
            document_id=after["_id"],
            status=update.status,
            previous=previous,
        )
        return Applied(outcome="changed", document=after, previous=previous)
