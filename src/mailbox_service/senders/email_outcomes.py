"""What the worker tells a sender about its email notification, once the outbox has it.

`document.delivered` when the relay accepted the message; `document.delivery_failed` when the
email failed for good, followed by the print fallback: the customer was not told about the
document, so it must go out on paper after all. That holds for a relay refusing the recipient
(cause `relay_refused`) and for every other final failure, retries exhausted included (cause
`notification_failed`): either way nobody told the customer. One exception: a document the
customer has already opened in the portal is not printed (they have it); the sender still
learns that the email failed.

The worker calls these only when its outcome write matched (the outbox returns whether it
recorded), so two workers racing over one document tell the sender once.

The reason a sender sees is the relay's answer with every email address in it masked: the
sender never learns the customer's address from us (operators see the full error on the
outbox, `notifications.email.error`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Literal

from mailbox_service.senders.event_log import BlockingEventLog
from mailbox_service.senders.print_fallback import BlockingPrintFallback
from mailbox_service.storage.document_status import MAX_REASON_CHARS

FailureCause = Literal["relay_refused", "notification_failed", "bounce"]

# Local parts may hold `'`, `+`, `.` and more: everything up to a delimiter belongs to it.
_ADDRESS = re.compile(r"[^\s<>\"(),;:\[\]@]+@[^\s<>\"'(),;:\[\]@]+")
MASK = "<recipient>"


def for_sender(reason: str) -> str:
    """The reason with email addresses masked, cut to what a sender is shown."""
    return _ADDRESS.sub(MASK, reason)[:MAX_REASON_CHARS]


def time_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def already_read(document: Mapping[str, Any]) -> bool:
    """The customer has opened it in the portal: a failed notification needs no paper."""
    return document.get("first_read_at") is not None or document.get("read_at") is not None


class EmailOutcomes:
    """Sync, for worker threads."""

    def __init__(self, events: BlockingEventLog, print_fallback: BlockingPrintFallback) -> None:
        self.events = events
        self.print_fallback = print_fallback

    def delivered(self, document: Mapping[str, Any], at: dt.datetime) -> None:
        """The relay accepted the email (not: the customer received it; a bounce may follow)."""
        self.events.record(document, "document.delivered", {"at": time_text(at)})

    def failed(self, document: Mapping[str, Any], error: str, cause: FailureCause) -> bool:
        """Tell the sender, then print unless the customer has read the document already.
        True when this call turned the delivery into print."""
        reason = for_sender(error)
        self.events.record(document, "document.delivery_failed", {"reason": reason, "cause": cause})
        if already_read(document):
            return False
        return self.print_fallback.require_print(str(document["_id"]), reason, cause)
