"""The demo inbox: two users, three accounts (one shared by both) and about forty documents.

`make run` (through `mailbox-service dev run`) and `mailbox-service demo seed` call
`seed_demo` for the accounts of `portal/demo_users.py`, whose users the portal's development
sign-in page lists, so the people you can sign in as are exactly the ones whose documents
were seeded.

Documents go through the real IngestService with source `demo` and fixed source refs, each with
a real PDF. Seeding again stores nothing twice: a ref that already exists is skipped before the
ingest call, because issue dates are relative to the day of the first seeding and would no
longer match the stored fingerprint (which IngestService rightly reports as a conflict).
Seeded documents are history, so they send no notifications; some start read, two archived.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_service.auth.tokens import PortalUser
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import FileReceiver
from mailbox_service.portal.demo_users import DEMO_ACCOUNTS, DEMO_USERS, DemoUser
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services

DEMO_SOURCE = "demo"
"""The sending system's name of every seeded document; (source, source_ref) makes it idempotent."""
SEEDED_BY = "demo-seed"


DOCUMENT_COUNT = 42
UNREAD_NEWEST = 7
"""The newest documents of each account stay unread; older ones start read."""
ARCHIVED_REFS = frozenset({"demo-0040", "demo-0041"})


@dataclass(frozen=True)
class DemoDocument:
    """One planned document: its ingest metadata, the text of its PDF, its starting state."""

    metadata: dict[str, Any]
    lines: list[str]
    read: bool
    archived: bool


@dataclass(frozen=True)
class DemoSeed:
    """What `seed_demo` did: `created` new documents, `existing` ones left as they were."""

    users: tuple[DemoUser, ...]
    accounts: tuple[str, ...]
    created: int
    existing: int

    @property
    def documents(self) -> int:
        return self.created + self.existing


def _money(rng: random.Random) -> str:
    cents = rng.randint(1_500, 48_000)
    return f"{cents // 100}.{cents % 100:02d}"


def _invoice(rng: random.Random, n: int, issued: dt.datetime) -> dict[str, Any]:
    return {
        "invoice_number": f"INV-{issued.year}-{n:05d}",
        "total_amount": _money(rng),
        "currency": "EUR",
        "due_date": (issued.date() + dt.timedelta(days=rng.choice((14, 21, 30)))).isoformat(),
    }


def _letter(rng: random.Random, n: int, issued: dt.datetime) -> dict[str, Any]:
    kind = rng.choice(("welcome", "price_change", "meter_reading_request", "general"))
    attributes: dict[str, Any] = {
        "contract_number": f"C-{4100 + n % 3}-{n:04d}",
        "letter_kind": kind,
    }
    if kind == "price_change":
        attributes["effective_date"] = (issued.date() + dt.timedelta(days=45)).isoformat()
    return attributes


def _shipment(rng: random.Random, n: int, issued: dt.datetime) -> dict[str, Any]:
    return {
        "shipment_number": f"SHP-{issued:%y%m}{n:04d}",
        "document_kind": rng.choice(("waybill", "delivery_note", "proof_of_delivery")),
        "order_reference": f"ORD-{rng.randint(1000, 9999)}",
    }


_ATTRIBUTES: dict[str, Callable[[random.Random, int, dt.datetime], dict[str, Any]]] = {
    "invoice": _invoice,
    "contract_letter": _letter,
    "shipment_document": _shipment,
}
# Invoices are what a portal mostly shows; the mix keeps every tab busy.
_TYPE_CYCLE = ("invoice", "contract_letter", "invoice", "shipment_document", "invoice")


def demo_documents(anchor: dt.datetime) -> list[DemoDocument]:
    """The planned documents, newest first; issued over the ~200 days before `anchor`.

    Pure and deterministic apart from `anchor`: refs, types, accounts and attributes are
    always the same, so a second run finds every ref already stored.
    """
    rng = random.Random(7)  # noqa: S311  (demo data must be reproducible, not secret)
    seen_per_account: dict[str, int] = {}
    planned: list[DemoDocument] = []
    for n in range(1, DOCUMENT_COUNT + 1):
        account = DEMO_ACCOUNTS[(n - 1) % len(DEMO_ACCOUNTS)]
        type_name = _TYPE_CYCLE[(n - 1) % len(_TYPE_CYCLE)]
        issued = (anchor - dt.timedelta(days=5 * (n - 1), hours=rng.randint(1, 20))).replace(
            microsecond=0
        )
        attributes = _ATTRIBUTES[type_name](rng, n, issued)
        ref = f"demo-{n:04d}"
        seen = seen_per_account.get(account.account_id, 0)
        seen_per_account[account.account_id] = seen + 1
        metadata = {
            "type": type_name,
            "source_ref": ref,
            "account_id": account.account_id,
            "issued_at": issued.isoformat().replace("+00:00", "Z"),
            "attributes": attributes,
            "recipient": {"name": account.holder, "email": account.email, "locale": "en"},
            "notify": False,
        }
        lines = [
            f"{account.holder}",
            f"Account {account.account_id}",
            f"Issued {issued:%Y-%m-%d}",
            "",
            *(
                f"{key.replace('_', ' ').capitalize()}: {value}"
                for key, value in attributes.items()
            ),
            "",
            "Demo document seeded by mailbox-service for the reference portal.",
        ]
        planned.append(
            DemoDocument(
                metadata=metadata,
                lines=lines,
                read=seen >= UNREAD_NEWEST,
                archived=ref in ARCHIVED_REFS,
            )
        )
    return planned


async def _ingest(services: Services, planned: DemoDocument) -> Doc:
    metadata = convert_metadata(dict(planned.metadata))
    doctype = services.registry.get(metadata.type)
    title = doctype.default_title(doctype.validate(metadata.attributes))
    # The PDF font speaks Latin-1: an en dash would print as "?".
    pdf = render_pdf(planned.lines, title=title.replace("\u2013", "-"))
    # The same receiver the HTTP upload uses: hashed and sniffed, never trusted blindly.
    receiver = FileReceiver(f"{metadata.source_ref}.pdf", services.settings.limits.max_upload_bytes)
    receiver.feed(pdf)
    file = receiver.finish()
    try:
        outcome = await services.ingest.accept(
            metadata, file, source=DEMO_SOURCE, origin="backfill"
        )
    finally:
        file.close()
    return outcome.document


async def seed_demo(services: Services, *, now: dt.datetime | None = None) -> DemoSeed:
    """Store the demo accounts and documents; documents already there are left alone."""
    for account in DEMO_ACCOUNTS:
        await services.accounts.update(
            account.account_id, by=SEEDED_BY, paperless=True, email=account.email, locale="en"
        )
    anchor = now or dt.datetime.now(dt.UTC)
    created = existing = 0
    for planned in demo_documents(anchor):
        ref = planned.metadata["source_ref"]
        if await services.documents.find_by_source_ref(DEMO_SOURCE, ref) is not None:
            existing += 1
            continue
        doc = await _ingest(services, planned)
        created += 1
        # Through the portal's own write path, as if the holder had read or archived it.
        owner = PortalUser(sub=SEEDED_BY, accounts=(doc["account_id"],))
        if planned.read:
            await services.mailbox.mark_read(owner, doc["_id"], True)
        if planned.archived:
            await services.mailbox.mark_archived(owner, doc["_id"], True)
    return DemoSeed(
        users=DEMO_USERS,
        accounts=tuple(account.account_id for account in DEMO_ACCOUNTS),
        created=created,
        existing=existing,
    )
