"""Erasure of a customer account: delete what no law requires us to keep, say what stays.

A document stays when
- it is under a hold (its own or its account's: `storage/holds.py`), or
- its type declares `legal_retention` and its `retain_until` has not passed, or
- its type is not installed (we cannot tell what the law asks of it: an operator decides).
Every other document goes: a tombstone (`erased`) first, then the metadata, then the blob, so
a crash leaves at most an orphan blob for the sweep. The account record keeps only its id and
`erased_at`: email, locale, paperless consent and its history are removed. Kept documents stay
as they are: they are the legal record (their notification outcomes are part of it).

The plan is computed first (`plan`), shown, and only then carried out (`apply`); the delete
query repeats the hold condition, so a hold set between the two still wins.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.log import get_logger
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.document_lifecycle import DocumentLifecycleStore
from mailbox_service.storage.holds import HoldStore, document_hold
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.tombstones import TombstoneStore

log = get_logger(__name__)

ACCOUNT_PERSONAL_FIELDS = (
    "email",
    "locale",
    "paperless",
    "paperless_changed_at",
    "email_changed_at",
    "locale_changed_at",
    "consent_history",
)
"""What an erased account record loses; `_id`, `created_at` and `erased_at` remain."""


@dataclass(frozen=True)
class Kept:
    """A document that survives erasure, and why."""

    id: str
    type: str
    retain_until: dt.datetime | None
    why: str

    def line(self) -> str:
        until = self.retain_until.date().isoformat() if self.retain_until else "-"
        return f"kept {self.id} {self.type} until {until}: {self.why}"


@dataclass
class ErasurePlan:
    account_id: str
    at: dt.datetime
    account_exists: bool
    delete: list[Doc] = field(default_factory=list)
    keep: list[Kept] = field(default_factory=list)

    def deleted_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(str(doc.get("type")) for doc in self.delete).items()))

    def lines(self) -> list[str]:
        by_type = ", ".join(f"{t} {n}" for t, n in self.deleted_by_type().items()) or "none"
        account = "anonymise the account record" if self.account_exists else "no account record"
        return [
            f"account {self.account_id}: delete {len(self.delete)} documents ({by_type}), "
            f"keep {len(self.keep)}, {account}",
            *(kept.line() for kept in self.keep),
        ]


@dataclass(frozen=True)
class ErasureResult:
    deleted: int
    kept: list[Kept]
    blobs_left: list[str]
    """Blob keys whose delete failed: the orphan sweep (or an operator) removes them."""
    raced: int
    """Documents in the plan that a new hold saved at the last moment (kept, not listed)."""


class Erasure:
    def __init__(
        self, collections: Collections, registry: DocumentTypeRegistry, blobs: BlobStore
    ) -> None:
        self._documents = DocumentLifecycleStore(collections)
        self._registry = registry
        self._blobs = blobs
        self._holds = HoldStore(collections)
        self._tombstones = TombstoneStore(collections)

    def _why_kept(self, doc: Doc, account_hold: Doc | None, at: dt.datetime) -> str | None:
        own = document_hold(doc)
        if own is not None:
            return f"document hold: {own.get('reason')}"
        if account_hold is not None:
            return f"account hold: {account_hold.get('reason')}"
        name = str(doc.get("type"))
        if name not in self._registry:
            return f"type {name} is not installed; its retention rule is unknown"
        retain_until: dt.datetime | None = doc.get("retain_until")
        if self._registry.get(name).legal_retention and (retain_until is None or retain_until > at):
            return "legal retention"
        return None

    async def plan(self, account_id: str, at: dt.datetime | None = None) -> ErasurePlan:
        at = at or utcnow()
        exists = await self._documents.account_exists(account_id)
        account_hold = await self._holds.account_hold(account_id)
        plan = ErasurePlan(account_id, at, exists)
        async for doc in self._documents.of_account(account_id):
            why = self._why_kept(doc, account_hold, at)
            if why is None:
                plan.delete.append(doc)
            else:
                plan.keep.append(
                    Kept(doc["_id"], str(doc.get("type")), doc.get("retain_until"), why)
                )
        return plan

    async def apply(self, plan: ErasurePlan) -> ErasureResult:
        ids = [doc["_id"] for doc in plan.delete]
        held_accounts = await self._holds.held_accounts()
        deleted = 0
        blobs_left: list[str] = []
        for start in range(0, len(ids), 1000):
            batch = plan.delete[start : start + 1000]
            batch_ids = ids[start : start + 1000]
            await self._tombstones.write(batch, "erased", plan.at)
            deleted += await self._documents.delete_unheld(batch_ids, held_accounts)
            remaining = await self._documents.remaining(batch_ids)
            if remaining:
                # A hold arrived after the plan: those documents stay, and so do their blobs.
                await self._tombstones.remove(list(remaining))
            for doc in batch:
                if doc["_id"] in remaining:
                    continue
                key = (doc.get("blob") or {}).get("key")
                if not key:
                    continue
                try:
                    await self._blobs.delete(key)
                except Exception as exc:
                    log.warning("erasure.blob_not_deleted", key=key, error=str(exc))
                    blobs_left.append(key)
        if plan.account_exists:
            await self._documents.forget_account(plan.account_id, ACCOUNT_PERSONAL_FIELDS, plan.at)
        return ErasureResult(deleted, plan.keep, blobs_left, len(ids) - deleted)
