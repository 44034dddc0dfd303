"""The acknowledgement pass: documents that had to be read, were not, and go to print after all.

A type opts in with `DocumentType.print_if_unread_after` (contract_letter: five days) and says
which of its documents need it with `acknowledgement_attributes()` (contract_letter: kind
`termination_confirmation`). A document is due when it is still delivered digitally, has never
been opened (`first_read_at` is unset: "mark unread" after a read does not count) and was stored
(`created_at`) at least that long before the pass's time. Each due document goes through the
print fallback (cause `unacknowledged`), whose compare-and-set makes a pass safe to run twice,
concurrently or after a crash: a document is printed, and its sender told, once.

The clock starts at `created_at`, not at the email's `sent_at`: the document is in the portal
from then on, a document without a sent email (it failed: printed already) needs no second
rule, and the query stays one index range. A relay outage that delays the email by hours
shortens the customer's time to read by as much.

Use (CLI `acknowledgements run`, the worker's periodic passes in senders/periodic.py):
`await AcknowledgementPass(documents, print_fallback, registry).run(at, dry_run=False)` returns
the counts per type.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from mailbox_service.doctypes import DocumentType, DocumentTypeRegistry
from mailbox_service.log import get_logger
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.mongo import Doc

log = get_logger(__name__)

CAUSE = "unacknowledged"
BATCH = 500


@dataclass
class AcknowledgementCounts:
    at: dt.datetime
    due: Counter[str] = field(default_factory=Counter)
    """Documents found due, per type."""
    printed: Counter[str] = field(default_factory=Counter)
    """Documents this pass turned into print (0 in a dry run)."""

    @property
    def total_printed(self) -> int:
        return sum(self.printed.values())


def reason_for(doctype: DocumentType) -> str:
    period = doctype.print_if_unread_after
    assert period is not None
    days = period / dt.timedelta(days=1)
    amount = f"{days:g} days" if days >= 1 else f"{period.total_seconds():g} seconds"
    return f"not read within {amount}: the {doctype.label.lower()} must reach the customer"


def due_query(doctype: DocumentType, at: dt.datetime) -> Doc:
    """The documents of `doctype` due for print at `at` (see the module docstring)."""
    period = doctype.print_if_unread_after
    assert period is not None
    query: Doc = {
        "type": doctype.name,
        "first_read_at": None,
        "delivery.mode": "digital",
        "created_at": {"$lte": at - period},
    }
    for name, value in doctype.acknowledgement_attributes().items():
        query[f"attributes.{name}"] = value
    return query


class AcknowledgementPass:
    def __init__(
        self,
        documents: DocumentStatusStore,
        print_fallback: PrintFallback,
        registry: DocumentTypeRegistry,
        *,
        batch: int = BATCH,
    ) -> None:
        self.documents = documents
        self.print_fallback = print_fallback
        self.registry = registry
        self.batch = batch

    def types(self) -> list[DocumentType]:
        """The registered types that require acknowledgement."""
        return [t for t in self.registry if t.print_if_unread_after is not None]

    async def run(self, at: dt.datetime, dry_run: bool = False) -> AcknowledgementCounts:
        """Print every document due at `at`; with `dry_run`, only count them."""
        counts = AcknowledgementCounts(at)
        for doctype in self.types():
            query = due_query(doctype, at)
            if dry_run:
                counts.due[doctype.name] = await self.documents.count(query)
                continue
            reason = reason_for(doctype)
            while True:
                found = await self.documents.ids(query, self.batch)
                printed = 0
                for document_id in found:
                    if await self.print_fallback.require_print(document_id, reason, CAUSE):
                        printed += 1
                counts.due[doctype.name] += len(found)
                counts.printed[doctype.name] += printed
                # Printed documents leave the query; a batch that printed nothing means the rest
                # changed meanwhile (read, or printed by someone else): they have left it too.
                if len(found) < self.batch or printed == 0:
                    break
        if counts.total_printed:
            log.info("acknowledgement.printed", at=at.isoformat(), printed=dict(counts.printed))
        return counts
