"""Print fallback: a digitally delivered document that must go out on paper after all.

One compare-and-set on the document turns `delivery.mode` from `digital` into `print`, keeps
the reason, and appends the change to `delivery.changes` (the status API shows the history);
only the caller whose update matched records `document.print_required`, so a bounce reported
twice, or a bounce racing the worker's own refusal, asks the sender to print once.

Stored shape of a change: {"at": datetime, "mode": "print", "reason": str, "cause": str}
where `cause` is a short machine word: `relay_refused`, `bounce`, `unacknowledged`, ...
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from mailbox_service.clock import utcnow
from mailbox_service.senders.event_log import BlockingEventLog, EventLog
from mailbox_service.storage.mongo import Doc

MAX_REASON_CHARS = 500
"""A reason is shown to senders and operators; a relay's essay is cut to this."""

# What the event needs from the document (senders/events.new_event), nothing more.
_EVENT_FIELDS = {"_id": 1, "source": 1, "source_ref": 1, "type": 1, "delivery.mode": 1}


def to_print(reason: str, cause: str, at: dt.datetime) -> tuple[Doc, Doc]:
    """The condition and update that turn a digital delivery into print."""
    reason = reason[:MAX_REASON_CHARS]
    update: Doc = {
        "$set": {
            "delivery.mode": "print",
            "delivery.reason": reason,
            "delivery.print_required_at": at,
        },
        "$push": {
            "delivery.changes": {"at": at, "mode": "print", "reason": reason, "cause": cause}
        },
    }
    return {"delivery.mode": "digital"}, update


def _event_data(reason: str, cause: str) -> dict[str, Any]:
    return {"reason": reason[:MAX_REASON_CHARS], "cause": cause}


class BlockingPrintFallback:
    """For the worker (sync pymongo)."""

    def __init__(self, documents: Collection[Doc], events: BlockingEventLog) -> None:
        self.documents = documents
        self.events = events

    def require_print(self, document_id: str, reason: str, cause: str) -> bool:
        """True when this call turned the delivery into print (and told the sender)."""
        condition, update = to_print(reason, cause, utcnow())
        changed = self.documents.find_one_and_update(
            {"_id": document_id, **condition},
            update,
            projection=_EVENT_FIELDS,
            return_document=ReturnDocument.AFTER,
        )
        if changed is None:
            return False
        self.events.record(changed, "document.print_required", _event_data(reason, cause))
        return True


class PrintFallback:
    """For the API and CLI (async pymongo)."""

    def __init__(self, documents: AsyncCollection[Doc], events: EventLog) -> None:
        self.documents = documents
        self.events = events

    async def require_print(self, document_id: str, reason: str, cause: str) -> bool:
        """True when this call turned the delivery into print (and told the sender)."""
        condition, update = to_print(reason, cause, utcnow())
        changed = await self.documents.find_one_and_update(
            {"_id": document_id, **condition},
            update,
            projection=_EVENT_FIELDS,
            return_document=ReturnDocument.AFTER,
        )
        if changed is None:
            return False
        await self.events.record(changed, "document.print_required", _event_data(reason, cause))
        return True
