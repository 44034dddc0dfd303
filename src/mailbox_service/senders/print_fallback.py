"""Print fallback: a digitally delivered document that must go out on paper after all.

One compare-and-set on the document turns `delivery.mode` from `digital` into `print`, keeps
the reason, and appends the change to `delivery.changes` (the status API shows the history);
only the caller whose update matched records `document.print_required`, so a bounce reported
twice, or a bounce racing the worker's own refusal, asks the sender to print once.

Stored shape of a change: {"at": datetime, "mode": "print", "reason": str, "cause": str}
where `cause` is a short machine word: `relay_refused`, `bounce`, `unacknowledged`, ...
The compare-and-set itself is storage/document_status.py's `require_print`.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.clock import utcnow
from mailbox_service.senders.event_log import BlockingEventLog, EventLog
from mailbox_service.storage.document_status import (
    MAX_REASON_CHARS,
    BlockingDocumentStatusStore,
    DocumentStatusStore,
)


def _event_data(reason: str, cause: str) -> dict[str, Any]:
    return {"reason": reason[:MAX_REASON_CHARS], "cause": cause}


class BlockingPrintFallback:
    """For the worker (sync pymongo)."""

    def __init__(self, documents: BlockingDocumentStatusStore, events: BlockingEventLog) -> None:
        self.documents = documents
        self.events = events

    def require_print(self, document_id: str, reason: str, cause: str) -> bool:
        """True when this call turned the delivery into print (and told the sender)."""
        changed = self.documents.require_print(document_id, reason, cause, utcnow())
        if changed is None:
            return False
        self.events.record(changed, "document.print_required", _event_data(reason, cause))
        return True


class PrintFallback:
    """For the API and CLI (async pymongo)."""

    def __init__(self, documents: DocumentStatusStore, events: EventLog) -> None:
        self.documents = documents
        self.events = events

    async def require_print(self, document_id: str, reason: str, cause: str) -> bool:
        """True when this call turned the delivery into print (and told the sender)."""
        changed = await self.documents.require_print(document_id, reason, cause, utcnow())
        if changed is None:
            return False
        await self.events.record(changed, "document.print_required", _event_data(reason, cause))
        return True
