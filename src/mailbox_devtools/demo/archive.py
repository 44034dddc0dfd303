"""A sample archive: real PDFs plus a backfill manifest, for demos, tests and benchmarks.

Deterministic: the same seed and `until` date give byte-identical files and manifest, so a
benchmark or a test can regenerate exactly what it measured. `issued_at` is spread over the ten
years before `until`, so backfilled documents land all over the portal's timeline.

Each PDF shows its own document's data (title, account, reference, dates, attributes) and is
padded to the requested size with a comment stream that viewers ignore.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from mailbox_devtools.demo.pdf import render_pdf
from mailbox_service.doctypes import DocumentTypeRegistry, load_registry

MANIFEST_NAME = "manifest.jsonl"
TEN_YEARS_S = int(365.25 * 10 * 86400)
_LETTER_KINDS = (
    "welcome",
    "price_change",
    "termination_confirmation",
    "meter_reading_request",
    "general",
)
_SHIPMENT_KINDS = ("waybill", "delivery_note", "customs_declaration", "proof_of_delivery")
_LOCALES = ("de", "en", "fr", "de-CH")


@dataclass(frozen=True)
class ArchiveSpec:
    count: int
    accounts: int
    until: dt.date
    """issued_at falls in the ten years before this day (00:00 UTC)."""
    types: tuple[str, ...] = ("invoice", "contract_letter", "shipment_document")
    size_kib: int = 30
    seed: int = 1
    ref_prefix: str = ""
    """Prefix of every source_ref; empty means `archive-<seed>`."""

    @property
    def prefix(self) -> str:
        return self.ref_prefix or f"archive-{self.seed}"


@dataclass(frozen=True)
class ArchiveEntry:
    """One document of the archive: its manifest line and what its PDF shows."""

    metadata: dict[str, Any]
    """The manifest line: ingest metadata plus `file`."""
    lines: list[str]
    title: str


@dataclass(frozen=True)
class ArchiveResult:
    manifest: Path
    count: int
    bytes: int


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _invoice(rng: random.Random, number: int, issued: dt.datetime) -> dict[str, Any]:
    day = issued.date()
    period_end = day.replace(day=1) - dt.timedelta(days=1)
    return {
        "invoice_number": f"INV-{day.year}-{number:07d}",
        "total_amount": _money(rng.randint(500, 250_000)),
        "currency": rng.choice(("EUR", "EUR", "EUR", "CHF")),
        "due_date": (day + dt.timedelta(days=rng.randint(14, 30))).isoformat(),
        "billing_period": {
            "start": period_end.replace(day=1).isoformat(),
            "end": period_end.isoformat(),
        },
    }


def _contract_letter(rng: random.Random, number: int, issued: dt.datetime) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "contract_number": f"CT-{rng.randint(100_000, 999_999)}",
        "letter_kind": rng.choice(_LETTER_KINDS),
    }
    if rng.random() < 0.7:
        effective = issued.date() + dt.timedelta(days=rng.randint(0, 60))
        attributes["effective_date"] = effective.isoformat()
    return attributes


def _shipment_document(rng: random.Random, number: int, issued: dt.datetime) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "shipment_number": f"SHP{issued.year}{number:07d}",
        "document_kind": rng.choice(_SHIPMENT_KINDS),
    }
    if rng.random() < 0.6:
        attributes["order_reference"] = f"PO-{rng.randint(10_000, 99_999)}"
    return attributes


Generator = Callable[[random.Random, int, dt.datetime], dict[str, Any]]
GENERATORS: dict[str, Generator] = {
    "invoice": _invoice,
    "contract_letter": _contract_letter,
    "shipment_document": _shipment_document,
}


def check_types(types: Sequence[str]) -> None:
    unknown = [t for t in types if t not in GENERATORS]
    if unknown or not types:
        known = ", ".join(GENERATORS)
        raise ValueError(
            f"no sample data for type(s) {', '.join(unknown) or '(none)'}; choose from {known}"
        )


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{_label(k)} {v}" for k, v in value.items())
    return str(value)


def entries(
    spec: ArchiveSpec, registry: DocumentTypeRegistry | None = None
) -> Iterator[ArchiveEntry]:
    """The archive's documents in manifest order; pure, nothing is written."""
    check_types(spec.types)
    if spec.count < 0 or spec.accounts < 1:
        raise ValueError("count must be >= 0 and accounts >= 1")
    registry = registry or load_registry(include_entry_points=False)
    rng = random.Random(spec.seed)  # noqa: S311  (sample data must be reproducible)
    until = dt.datetime.combine(spec.until, dt.time(), tzinfo=dt.UTC)
    for index in range(1, spec.count + 1):
        type_name = spec.types[rng.randrange(len(spec.types))]
        account = rng.randint(1, spec.accounts)
        issued = until - dt.timedelta(seconds=rng.randint(1, TEN_YEARS_S))
        attributes = GENERATORS[type_name](rng, index, issued)
        doctype = registry.get(type_name)
        title = doctype.default_title(doctype.validate(attributes))
        source_ref = f"{spec.prefix}-{index:07d}"
        account_id = f"ACC-{account:06d}"
        issued_at = issued.strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata: dict[str, Any] = {
            "type": type_name,
            "source_ref": source_ref,
            "account_id": account_id,
            "issued_at": issued_at,
            "attributes": attributes,
            "recipient": {"name": f"Customer {account:06d}", "locale": rng.choice(_LOCALES)},
            "file": f"files/{type_name}/{issued.year}/{source_ref}.pdf",
        }
        lines = [
            f"{doctype.label} for account {account_id}",
            f"Issued: {issued_at}",
            f"Reference: {source_ref}",
            "",
            *(f"{_label(key)}: {_describe(value)}" for key, value in attributes.items()),
            "",
            "Sample document generated by `mailbox-service demo archive`.",
        ]
        yield ArchiveEntry(metadata, lines, title)


def render_entry(entry: ArchiveEntry, size_bytes: int) -> bytes:
    """The entry's PDF, padded to about `size_bytes` (never below what its text needs)."""
    plain = render_pdf(entry.lines, title=entry.title)
    if len(plain) >= size_bytes:
        return plain
    # The padding object brings its own framing; measure it once, then aim exactly.
    guess = render_pdf(entry.lines, title=entry.title, padding=size_bytes - len(plain))
    padding = max(size_bytes - len(plain) - (len(guess) - size_bytes), 1)
    return render_pdf(entry.lines, title=entry.title, padding=padding)


def write_archive(
    outdir: Path,
    spec: ArchiveSpec,
    *,
    on_entry: Callable[[int], None] | None = None,
) -> ArchiveResult:
    """Write every PDF below `outdir/files/` and `outdir/manifest.jsonl`, line by line."""
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = outdir / MANIFEST_NAME
    made: set[Path] = set()
    total = 0
    count = 0
    encoder = msgspec.json.Encoder()
    with manifest.open("wb") as out:
        for entry in entries(spec):
            path = outdir / entry.metadata["file"]
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            pdf = render_entry(entry, spec.size_kib * 1024)
            path.write_bytes(pdf)
            out.write(encoder.encode(entry.metadata) + b"\n")
            total += len(pdf)
            count += 1
            if on_entry is not None:
                on_entry(count)
    return ArchiveResult(manifest, count, total)
