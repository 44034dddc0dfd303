"""`mailbox-service demo …`: sample data for demos, tests and benchmarks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click

from mailbox_devtools.demo.archive import GENERATORS, ArchiveSpec, check_types, write_archive
from mailbox_service.backfill.report import format_bytes


def _types(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(",") if part.strip())
    try:
        check_types(names)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return names


def _ref_prefix(_: click.Context, __: click.Parameter, value: str) -> str:
    if value and not re.fullmatch(r"[\x21-\x7e]{1,180}", value):
        raise click.BadParameter("use up to 180 printable ASCII characters without spaces")
    return value


@click.group()
def demo() -> None:
    """Sample data: archives to backfill."""


@demo.command("archive")
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(min=0), required=True, help="Documents to write.")
@click.option(
    "--accounts",
    type=click.IntRange(min=1),
    required=True,
    help="Customer accounts the documents are spread over.",
)
@click.option(
    "--types",
    default=",".join(GENERATORS),
    show_default=True,
    callback=_types,
    help="Comma-separated document types.",
)
@click.option(
    "--size-kib",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Approximate size of each PDF.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Same seed (and --until) → byte-identical archive.",
)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="issued_at spreads over the ten years before this day [default: today, UTC].",
)
@click.option(
    "--ref-prefix",
    default="",
    callback=_ref_prefix,
    help="source_ref prefix [default: archive-SEED].",
)
def archive(
    outdir: Path,
    count: int,
    accounts: int,
    types: tuple[str, ...],
    size_kib: int,
    seed: int,
    until: dt.datetime | None,
    ref_prefix: str,
) -> None:
    """Write COUNT sample PDFs and OUTDIR/manifest.jsonl, ready for `mailbox-service backfill`."""
    spec = ArchiveSpec(
        count=count,
        accounts=accounts,
        until=until.date() if until else dt.datetime.now(dt.UTC).date(),
        types=types,
        size_kib=size_kib,
        seed=seed,
        ref_prefix=ref_prefix,
    )
    result = write_archive(outdir, spec)
    click.echo(
        f"wrote {result.count} documents ({format_bytes(result.bytes)}) to {outdir}; "
        f"manifest: {result.manifest}"
    )
