"""What a sender may know about one of its documents: the status API's view.

Delivery (mode, reason, and how it changed), each notification channel's outcome, the first
read and download, and the business status the sender itself set. Never who read it, nor the
customer's contact data or the portal's archive state: that is the customer's business.

The delivery history starts with the decision made at ingest (at `created_at`) followed by
every stored change (`delivery.changes`, senders/print_fallback.py). Only a digital delivery
changes (to print), so when changes exist the ingest decision was `digital`, without reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from mailbox_service.senders.email_outcomes import for_sender
from mailbox_service.storage.mongo import Doc

DeliveryMode = Literal["digital", "print"]
ChannelState = Literal["pending", "sending", "sent", "failed", "skipped"]

STATUS_PROJECTION: dict[str, int] = {
    "_id": 1,
    "type": 1,
    "source": 1,
    "source_ref": 1,
    "account_id": 1,
    "created_at": 1,
    "delivery.mode": 1,
    "delivery.reason": 1,
    "delivery.changes": 1,
    "notifications": 1,
    "first_read_at": 1,
    "first_downloaded_at": 1,
    "status": 1,
    "status_at": 1,
}
"""The stored fields the view is made of (never the delivery email or locale)."""


class DeliveryChange(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the delivery's history; the first is the decision at ingest."""

    at: dt.datetime
    mode: DeliveryMode
    reason: str | None = None
    cause: Annotated[
        str,
        msgspec.Meta(
            description="Why it changed, as a machine word: `ingest` for the first entry, "
            "`relay_refused`, `bounce`, `unacknowledged` for a print fallback."
        ),
    ]


class DeliveryStatus(msgspec.Struct, frozen=True, kw_only=True):
    mode: Annotated[DeliveryMode, msgspec.Meta(description="How the document goes out now.")]
    reason: Annotated[
        str | None, msgspec.Meta(description="Why it is `print` (null for digital).")
    ] = None
    changes: list[DeliveryChange]
    """Oldest first; the last entry is the current mode."""


class ChannelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One notification channel's outcome."""

    status: ChannelState
    attempts: int
    last_error: Annotated[
        str | None, msgspec.Meta(description="The last failure (the relay's reply), or null.")
    ] = None
    sent_at: Annotated[
        dt.datetime | None,
        msgspec.Meta(description="When the mail relay (email) or Redis (realtime) took it."),
    ] = None


class ChannelsStatus(msgspec.Struct, frozen=True, kw_only=True):
    email: ChannelStatus
    realtime: ChannelStatus


class DocumentStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What happened to a document, as its sender may know it (never who read it)."""

    id: str
    source_ref: str
    type: str
    account_id: str
    created_at: dt.datetime
    delivery: DeliveryStatus
    channels: ChannelsStatus
    first_read_at: Annotated[
        dt.datetime | None, msgspec.Meta(description="First time the customer opened it.")
    ] = None
    first_downloaded_at: Annotated[
        dt.datetime | None, msgspec.Meta(description="First time the file was downloaded.")
    ] = None
    status: Annotated[
        str | None,
        msgspec.Meta(description="Business status (e.g. invoice `paid`); null: the type has none."),
    ] = None
    status_at: Annotated[
        dt.datetime | None,
        msgspec.Meta(description="The sender's time of the newest status it reported."),
    ] = None


class DocumentStatusList(msgspec.Struct, frozen=True):
    """Documents of the caller's source with the asked `source_ref`: none or one."""

    items: list[DocumentStatus]


_UNKNOWN_CHANNEL: Mapping[str, Any] = {"status": "skipped", "attempts": 0}


def _channel(state: Mapping[str, Any] | None) -> ChannelStatus:
    state = state or _UNKNOWN_CHANNEL
    return ChannelStatus(
        status=state.get("status", "skipped"),
        attempts=int(state.get("attempts") or 0),
        # The relay's reply names the customer's address; a sender never learns it from us.
        last_error=for_sender(error) if (error := state.get("error")) else None,
        sent_at=state.get("sent_at"),
    )


def delivery_history(document: Doc) -> list[DeliveryChange]:
    """The ingest decision, then every stored change, oldest first."""
    delivery = document.get("delivery") or {}
    changes = delivery.get("changes") or []
    if changes:
        first = DeliveryChange(at=document["created_at"], mode="digital", cause="ingest")
    else:
        first = DeliveryChange(
            at=document["created_at"],
            mode=delivery.get("mode", "digital"),
            reason=delivery.get("reason"),
            cause="ingest",
        )
    return [
        first,
        *(
            DeliveryChange(
                at=change["at"],
                mode=change["mode"],
                reason=change.get("reason"),
                cause=change.get("cause") or "unknown",
            )
            for change in changes
        ),
    ]


def status_of(document: Doc) -> DocumentStatus:
    """The view of a stored document (read with STATUS_PROJECTION or whole)."""
    delivery = document.get("delivery") or {}
    notifications = document.get("notifications") or {}
    return DocumentStatus(
        id=document["_id"],
        source_ref=document["source_ref"],
        type=document["type"],
        account_id=document["account_id"],
        created_at=document["created_at"],
        delivery=DeliveryStatus(
            mode=delivery.get("mode", "digital"),
            reason=delivery.get("reason"),
            changes=delivery_history(document),
        ),
        channels=ChannelsStatus(
            email=_channel(notifications.get("email")),
            realtime=_channel(notifications.get("realtime")),
        ),
        first_read_at=document.get("first_read_at"),
        first_downloaded_at=document.get("first_downloaded_at"),
        status=document.get("status"),
        status_at=document.get("status_at"),
    )
