"""`mailbox-service backfill` against the real stack: imports, reruns, bad lines, signals.

Most tests drive the real CLI as a subprocess (exit codes, summary, errors file, signals);
a few call `run_backfill` in-process where only the stored result matters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import cli, invoice_metadata, post_document, sample_pdf, unique
from mailbox_devtools.demo.archive import ArchiveSpec, write_archive
from mailbox_fixtures import bearer, portal_token
from mailbox_service.backfill import importer
from mailbox_service.backfill.report import ErrorLog
from mailbox_service.backfill.runner import BackfillOptions, run_backfill
from mailbox_service.clock import utcnow
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import receive_path
from mailbox_service.settings import Settings
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services

TODAY = dt.datetime.now(dt.UTC).date()


def make_archive(root: Path, count: int, **kw: Any) -> Path:
    """A fresh archive (unique references) and its manifest's path."""
    spec = ArchiveSpec(
        count=count,
        accounts=kw.pop("accounts", 3),
        until=TODAY,
        size_kib=kw.pop("size_kib", 2),
        ref_prefix=unique("arc"),
        **kw,
    )
    return write_archive(root, spec).manifest


def options_for(manifest: Path, source: str, **kw: Any) -> BackfillOptions:
    """In-process options: files relative to the manifest's folder, the upload size limit."""
    return BackfillOptions(
        manifest=manifest,
        base_dir=manifest.parent.resolve(),
        max_bytes=50 * 1024 * 1024,
        source=source,
        **kw,
    )


def lines_of(manifest: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def with_checkpoint(manifest: Path, args: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the checkpoint beside the test's manifest, not in the current folder."""
    if "--checkpoint" in args or "--no-checkpoint" in args:
        return args
    return (*args, "--checkpoint", str(manifest.parent / "checkpoint.json"))


def backfill(manifest: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the CLI with --json; (exit code, summary, stderr)."""
    result = cli("backfill", str(manifest), "--json", *with_checkpoint(manifest, args), check=False)
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


async def stored(services: Services, source: str) -> list[Doc]:
    return await services.database.documents.find({"source": source}).to_list()


async def count_stored(services: Services, source: str) -> int:
    return int(await services.database.documents.count_documents({"source": source}))


async def blob_bytes(services: Services, key: str) -> bytes:
    return b"".join([chunk async for chunk in services.blobs.stream(key)])


async def orphans_since(services: Services, since: dt.datetime) -> list[str]:
    """Blob keys written after `since` that no document owns."""

    def recent() -> list[str]:
        objects = services.blobs.client.list_objects(services.blobs.bucket, "documents/", True)
        return [
            o.object_name
            for o in objects
            if o.object_name and o.last_modified is not None and o.last_modified >= since
        ]

    keys = await anyio.to_thread.run_sync(recent)
    # A document is created after its blob is written: its created_at is after `since` too.
    owned = {
        doc["blob"]["key"]
        async for doc in services.database.documents.find(
            {"created_at": {"$gte": since}}, {"blob.key": 1}
        )
    }
    return [key for key in keys if key not in owned]


def since_now() -> dt.datetime:
    # MinIO reports modification times in whole seconds.
    return utcnow().replace(microsecond=0) - dt.timedelta(seconds=1)


NewSource = Callable[..., str]


@pytest.fixture
async def new_source(services: Services) -> AsyncIterator[NewSource]:
    """Unique sources for one test; their documents and blobs are removed afterwards, so the
    shared stack stays small for the tests that come after (the orphan sweep test scans it)."""
    made: list[str] = []

    def make(prefix: str = "bf") -> str:
        made.append(unique(prefix))
        return made[-1]

    yield make
    query = {"source": {"$in": made}}
    async for doc in services.database.documents.find(query, {"blob.key": 1}):
        await services.blobs.delete(doc["blob"]["key"], bypass_governance=True)
    await services.database.documents.delete_many(query)


# -- the happy path ---------------------------------------------------------------------------


async def test_archive_is_imported_once_and_a_rerun_skips_everything(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    manifest = make_archive(tmp_path / "arc", 12)
    source = new_source()
    errors = tmp_path / "errors.jsonl"

    code, summary, stderr = backfill(manifest, "--source", source, "--errors", str(errors))
    assert code == 0, stderr
    assert summary["imported"] == 12
    assert summary["skipped"] == summary["failed"] == 0
    assert summary["bytes"] == sum(p.stat().st_size for p in (tmp_path / "arc").rglob("*.pdf"))
    assert summary["documents_per_s"] > 0
    assert not errors.exists()
    # Not a terminal: plain progress lines on stderr, no escape codes.
    assert "backfill: importing 12 lines" in stderr
    assert "\x1b[" not in stderr

    docs = {doc["source_ref"]: doc for doc in await stored(services, source)}
    assert len(docs) == 12
    for line in lines_of(manifest):
        doc = docs[line["source_ref"]]
        assert doc["origin"] == "backfill"
        assert doc["type"] == line["type"]
        assert doc["account_id"] == line["account_id"]
        # Optional attributes the line left out are stored as null.
        assert {k: v for k, v in doc["attributes"].items() if v is not None} == line["attributes"]
        # The stored issued_at is the manifest's, not the import time.
        assert doc["issued_at"] == dt.datetime.fromisoformat(line["issued_at"])
        for channel in ("email", "realtime"):
            assert doc["notifications"][channel]["status"] == "skipped"
            assert doc["notifications"][channel]["reason"] == "backfilled without --notify"
        content = (tmp_path / "arc" / line["file"]).read_bytes()
        assert doc["blob"]["sha256"] == hashlib.sha256(content).hexdigest()
        assert doc["blob"]["filename"] == Path(line["file"]).name
        assert await blob_bytes(services, doc["blob"]["key"]) == content

    code, summary, _ = backfill(manifest, "--source", source, "--errors", str(errors))
    assert code == 0
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (0, 12, 0)
    assert await count_stored(services, source) == 12


async def test_backfilled_documents_sort_by_issued_at_in_the_portal(
    services: Services,
    settings: Settings,
    client: AsyncTestClient[Any],
    ingest_key: str,
    tmp_path: Path,
    new_source: NewSource,
) -> None:
    account = unique("acct")
    recent = await post_document(
        client, ingest_key, invoice_metadata(account, notify=False), sample_pdf("now")
    )
    assert recent.status_code == 201
    files = tmp_path / "files"
    files.mkdir()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ages = {"nine-years": 9 * 365, "three-years": 3 * 365, "last-month": 30}
    records = []
    for name, days in ages.items():
        (files / f"{name}.pdf").write_bytes(sample_pdf(name))
        issued = (now - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")
        records.append(
            json.dumps(
                invoice_metadata(account, source_ref=unique(name), issued_at=issued)
                | {"file": f"files/{name}.pdf"}
            )
        )
    manifest = tmp_path / "m.jsonl"
    # Deliberately not in date order.
    manifest.write_text("\n".join([records[1], records[0], records[2]]) + "\n")
    code, summary, stderr = backfill(
        manifest, "--source", new_source(), "--errors", str(tmp_path / "e.jsonl")
    )
    assert code == 0, stderr
    assert summary["imported"] == 3

    response = await client.get(
        "/v1/mailbox/documents",
        params={"account": account},
        headers=bearer(portal_token(settings, account)),
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items[0]["id"] == recent.json()["id"]
    issued_order = [item["issued_at"] for item in items]
    assert issued_order == sorted(issued_order, reverse=True)
    expected = [json.loads(r)["issued_at"] for r in (records[2], records[1], records[0])]
    assert issued_order[1:] == expected


async def test_csv_manifest_with_dotted_columns(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    (tmp_path / "a.pdf").write_bytes(sample_pdf("csv a"))
    (tmp_path / "b.pdf").write_bytes(sample_pdf("csv b"))
    ref_a, ref_b, account = unique("csv"), unique("csv"), unique("acct")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "type,source_ref,account_id,issued_at,title,file,attributes.invoice_number,"
        "attributes.total_amount,attributes.currency,attributes.due_date,"
        "attributes.billing_period.start,attributes.billing_period.end,recipient.name,"
        "recipient.locale\n"
        f'invoice,{ref_a},{account},2017-05-01T10:00:00Z,"March, 2017",a.pdf,N-1,12.50,EUR,'
        "2017-05-31,2017-03-01,2017-03-31,Kim,de\n"
        f"invoice,{ref_b},{account},,,b.pdf,N-2,3.00,CHF,2017-06-30,,,,\n"
    )
    source = new_source()
    options = options_for(manifest, source)
    summary = await run_backfill(services.ingest, options)
    assert (summary.imported, summary.failed) == (2, 0)

    docs = {doc["source_ref"]: doc for doc in await stored(services, source)}
    a = docs[ref_a]
    assert a["title"] == "March, 2017"
    assert a["issued_at"] == dt.datetime(2017, 5, 1, 10, tzinfo=dt.UTC)
    assert a["attributes"]["billing_period"] == {"start": "2017-03-01", "end": "2017-03-31"}
    assert a["attributes"]["total_amount"] == "12.50"
    assert a["recipient"] == {"email": None, "name": "Kim", "locale": "de"}
    assert docs[ref_b]["attributes"]["currency"] == "CHF"
    assert docs[ref_b]["recipient"] is None
    assert docs[ref_b]["title"] == "Invoice N-2"


# -- bad input --------------------------------------------------------------------------------


async def test_each_bad_line_is_reported_and_every_other_line_imported(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    root = tmp_path / "arc"
    manifest = make_archive(root, 3, types=("invoice",))
    good = lines_of(manifest)
    source = new_source()
    (root / "notes.txt").write_text("not a pdf at all\n")
    (root / "png.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (tmp_path / "outside.pdf").write_bytes(sample_pdf("outside"))

    # A reference already stored with other content.
    taken = unique("taken")
    first = await services.ingest.accept(
        convert_metadata(invoice_metadata("acct-x", source_ref=taken)),
        receive_path(root / good[0]["file"], 10**7),
        source=source,
        origin="backfill",
    )
    assert first.created

    def variant(**changes: Any) -> str:
        line = json.loads(json.dumps(good[0])) | {"source_ref": unique("bad")}
        for key, value in changes.items():
            if value is None:
                line.pop(key, None)
            else:
                line[key] = value
        return json.dumps(line)

    no_currency = json.loads(variant())
    del no_currency["attributes"]["currency"]
    bad_lines = {
        "broken json": '{"type": "invoice", "source_ref": ',
        "unknown type": variant(type="memo"),
        "missing attribute": json.dumps(no_currency),
        "missing file": variant(file="files/nowhere.pdf"),
        "text file": variant(file="notes.txt"),
        "png file": variant(file="png.pdf"),
        "conflict": json.dumps(
            invoice_metadata("acct-x", source_ref=taken) | {"file": good[1]["file"]}
        ),
        "absolute path": variant(file=str(tmp_path / "outside.pdf")),
        "escape": variant(file="../outside.pdf"),
        "unknown field": variant(colour="blue"),
    }
    text = [json.dumps(good[0]), *bad_lines.values(), json.dumps(good[1]), json.dumps(good[2])]
    manifest.write_text("\n".join(text) + "\n")
    errors = tmp_path / "errors.jsonl"

    code, summary, stderr = backfill(manifest, "--source", source, "--errors", str(errors))
    assert code == 1, stderr
    assert (summary["imported"], summary["skipped"], summary["failed"]) == (3, 0, 10)
    assert summary["errors_file"] == str(errors)

    records = {r["line"]: r for r in map(json.loads, errors.read_text().splitlines())}
    assert sorted(records) == list(range(2, 12))
    by_name = dict(zip(bad_lines, (records[n] for n in range(2, 12)), strict=True))
    expect = {
        "broken json": ("bad_line", "line", "line is not valid JSON"),
        "unknown type": ("invalid_metadata", "type", "unknown document type 'memo'"),
        "missing attribute": ("invalid_metadata", "attributes.currency", "field is required"),
        "missing file": ("bad_file", "file", "no such file: files/nowhere.pdf"),
        "text file": ("unsupported_content", "file", "content is application/octet-stream"),
        "png file": ("unsupported_content", "file", "content is image/png"),
        "conflict": ("conflict", "source_ref", "already used for a different document"),
        "absolute path": ("bad_file", "file", "absolute paths are not allowed"),
        "escape": ("bad_file", "file", "'..' is not allowed"),
        "unknown field": ("invalid_metadata", "colour", "unknown field 'colour'"),
    }
    for name, (code_, field, reason) in expect.items():
        record = by_name[name]
        assert (record["code"], record["field"]) == (code_, field), name
        assert reason.lower() in record["reason"].lower(), (name, record["reason"])
        # The original line, ready to be fixed and fed again.
        assert record["original"] == bad_lines[name]
        expected_ref = None if name == "broken json" else json.loads(bad_lines[name])["source_ref"]
        assert record["source_ref"] == expected_ref

    refs = {doc["source_ref"] for doc in await stored(services, source)}
    assert refs == {taken, *(line["source_ref"] for line in good)}
    # The conflicting line did not replace the stored document.
    (kept,) = [d for d in await stored(services, source) if d["source_ref"] == taken]
    assert kept["_id"] == first.document["_id"]
    assert kept["blob"]["sha256"] == first.document["blob"]["sha256"]


async def test_duplicate_reference_in_one_manifest_is_imported_once(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    manifest = make_archive(tmp_path, 2)
    first, second = lines_of(manifest)
    conflicting = first | {"file": second["file"]}
    manifest.write_text("\n".join(json.dumps(x) for x in (first, first, conflicting)) + "\n")
    source = new_source()
    options = options_for(manifest, source)
    errors = ErrorLog(tmp_path / "errors.jsonl")
    summary = await run_backfill(services.ingest, options, errors=errors)
    errors.close()
    assert (summary.imported, summary.skipped, summary.failed) == (1, 1, 1)
    assert await count_stored(services, source) == 1
    (record,) = map(json.loads, (tmp_path / "errors.jsonl").read_text().splitlines())
    assert (record["line"], record["code"]) == (3, "conflict")


async def test_replays_met_on_insert_are_skipped_and_leave_no_blob(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    """Once a batch met no replay the next one inserts first; the unique index then finds
    the replays and conflicts, and their freshly uploaded blobs are removed again."""
    manifest = make_archive(tmp_path, 6, types=("invoice",))
    lines = lines_of(manifest)
    source = new_source()
    tail = tmp_path / "tail.jsonl"
    tail.write_text("\n".join(json.dumps(line) for line in lines[3:]) + "\n")
    assert (await run_backfill(services.ingest, options_for(tail, source))).imported == 3
    # Line 6 keeps its (stored) reference but now comes with another file: a conflict.
    lines[5] = lines[5] | {"file": lines[0]["file"]}
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    before = since_now()

    errors = ErrorLog(tmp_path / "errors.jsonl")
    summary = await run_backfill(
        services.ingest,
        options_for(manifest, source, concurrency=1, batch_size=3),
        errors=errors,
    )
    errors.close()
    assert (summary.imported, summary.skipped, summary.failed) == (3, 2, 1)
    (record,) = map(json.loads, (tmp_path / "errors.jsonl").read_text().splitlines())
    assert (record["line"], record["code"]) == (6, "conflict")
    assert await count_stored(services, source) == 6
    assert await orphans_since(services, before) == []


async def test_large_files_reach_the_service_in_smaller_groups(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_source: NewSource
) -> None:
    """A batch goes to the service early once its files add up to GROUP_BYTES, so a batch of
    big files never sits on disk whole."""
    calls: list[int] = []
    accept_many = services.ingest.accept_many

    async def counting(items: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        return await accept_many(items, **kwargs)

    monkeypatch.setattr(services.ingest, "accept_many", counting)
    monkeypatch.setattr(importer, "GROUP_BYTES", 3 * 1024)
    manifest = make_archive(tmp_path, 6, size_kib=2)
    summary = await run_backfill(
        services.ingest, options_for(manifest, new_source(), concurrency=2)
    )
    assert summary.imported == 6
    # One batch of six 2 KiB files, two readers: a group is handed on once it holds 3 KiB,
    # so after two files, or three when the other reader had taken one more meanwhile.
    assert sum(calls) == 6
    assert len(calls) >= 2
    assert all(2 <= count <= 3 for count in calls[:-1])

    calls.clear()
    monkeypatch.setattr(importer, "GROUP_BYTES", 1024 * 1024)
    manifest = make_archive(tmp_path / "small", 6, size_kib=2)
    summary = await run_backfill(
        services.ingest, options_for(manifest, new_source(), concurrency=2)
    )
    assert summary.imported == 6
    assert calls == [6]


async def test_empty_manifest_is_a_summary_of_zeros(tmp_path: Path, services: Services) -> None:
    manifest = tmp_path / "empty.jsonl"
    manifest.write_text("\n\n")
    code, summary, _ = backfill(manifest, "--errors", str(tmp_path / "e.jsonl"))
    assert code == 0
    assert {k: summary[k] for k in ("imported", "skipped", "failed", "bytes")} == {
        "imported": 0,
        "skipped": 0,
        "failed": 0,
        "bytes": 0,
    }
    assert summary["interrupted"] is False


async def test_dry_run_checks_every_line_and_writes_nothing(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    root = tmp_path / "arc"
    manifest = make_archive(root, 5)
    lines = manifest.read_text().splitlines()
    (root / "fake.pdf").write_text("hello")
    fake = json.loads(lines[0]) | {"source_ref": unique("fake"), "file": "fake.pdf"}
    manifest.write_text("\n".join([*lines, json.dumps(fake)]) + "\n")
    source = new_source()
    before = since_now()
    errors = tmp_path / "errors.jsonl"

    code, summary, _ = backfill(manifest, "--source", source, "--dry-run", "--errors", str(errors))
    assert code == 1
    assert summary["dry_run"] is True
    assert (summary["checked"], summary["failed"], summary["imported"]) == (5, 1, 0)
    (record,) = map(json.loads, errors.read_text().splitlines())
    assert (record["line"], record["code"]) == (6, "unsupported_content")
    assert await count_stored(services, source) == 0
    assert await orphans_since(services, before) == []

    result = cli(
        "backfill",
        str(manifest),
        "--source",
        source,
        "--dry-run",
        "--limit",
        "5",
        "--errors",
        str(errors),
        check=False,
    )
    assert result.returncode == 0
    assert "backfill dry run finished: nothing was written" in result.stdout
    assert "valid     5" in result.stdout


async def test_limit_and_notify(services: Services, tmp_path: Path, new_source: NewSource) -> None:
    manifest = make_archive(tmp_path, 6)
    source = new_source()
    options = options_for(
        manifest,
        source,
        concurrency=2,
        limit=4,
        notify=True,
    )
    summary = await run_backfill(services.ingest, options)
    assert summary.imported == 4
    docs = await stored(services, source)
    assert sorted(d["source_ref"] for d in docs) == [
        line["source_ref"] for line in lines_of(manifest)[:4]
    ]
    # --notify: the worker gets the document as for an upload (these accounts have no
    # consent, so email is skipped for print delivery, the portal event is pending).
    for doc in docs:
        assert doc["notifications"]["realtime"]["status"] == "pending"
        assert doc["notifications"]["email"]["status"] == "skipped"


# -- interruptions ----------------------------------------------------------------------------


def start_backfill(manifest: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailbox_service",
            "backfill",
            str(manifest),
            *with_checkpoint(manifest, args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


async def wait_for_documents(
    services: Services, source: str, at_least: int, process: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + 60
    while await count_stored(services, source) < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "backfill did not make progress"
        await asyncio.sleep(0.02)


async def test_killed_run_carries_on_without_duplicates(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    total = 80
    manifest = make_archive(tmp_path / "arc", total, size_kib=1)
    source = new_source("kill")
    errors = tmp_path / "errors.jsonl"
    before = since_now()
    # One document at a time, so "in flight" is exactly one document.
    process = start_backfill(
        manifest,
        "--source",
        source,
        "--concurrency",
        "1",
        "--batch-size",
        "1",
        "--errors",
        str(errors),
    )
    await wait_for_documents(services, source, 10, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    # An insert the killed process had already sent may still commit on the server: wait
    # until the count stops moving.
    done = await count_stored(services, source)
    for _ in range(50):
        await asyncio.sleep(0.3)
        if (now := await count_stored(services, source)) == done:
            break
        done = now
    assert 10 <= done < total
    # At most the one blob whose metadata the kill cut off (the orphan sweep removes it).
    assert len(await orphans_since(services, before)) <= 1

    # Correctness comes from idempotency alone: resume without the checkpoint's help.
    code, summary, stderr = backfill(
        manifest, "--source", source, "--errors", str(errors), "--no-checkpoint"
    )
    assert code == 0, stderr
    outcome = (summary["imported"], summary["skipped"], summary["failed"])
    assert outcome == (total - done, done, 0), summary
    assert summary["from_checkpoint"] == 0
    docs = await stored(services, source)
    assert len(docs) == total
    assert len({doc["source_ref"] for doc in docs}) == total
    leftover = await orphans_since(services, before)
    assert len(leftover) <= 1
    for key in leftover:  # what the orphan sweep would do later
        await services.blobs.delete(key, bypass_governance=True)


async def test_ctrl_c_finishes_in_flight_documents_and_prints_the_summary(
    services: Services, tmp_path: Path, new_source: NewSource
) -> None:
    total = 80
    manifest = make_archive(tmp_path / "arc", total, size_kib=1)
    source = new_source("int")
    before = since_now()
    process = start_backfill(
        manifest,
        "--source",
        source,
        "--concurrency",
        "2",
        "--batch-size",
        "2",
        "--errors",
        str(tmp_path / "errors.jsonl"),
    )
    await wait_for_documents(services, source, 6, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "stopping: finishing the documents in flight" in stderr
    assert stdout.startswith("backfill interrupted: run it again to carry on")
    imported = int(re.search(r"imported\s+(\d+)", stdout).group(1))  # type: ignore[union-attr]
    assert "failed    0" in stdout
    assert "documents/s" in stdout
    # Every document it started was finished: the summary matches what is stored, no orphans.
    assert imported == await count_stored(services, source)
    assert 6 <= imported < total
    assert await orphans_since(services, before) == []

    # The stopped run left a checkpoint: the rerun counts its lines as skipped without
    # looking them up, imports the rest, and removes the checkpoint once done.
    checkpoint = tmp_path / "arc" / "checkpoint.json"
    assert json.loads(checkpoint.read_text())["through_line"] == imported
    code, summary, stderr = backfill(
        manifest, "--source", source, "--errors", str(tmp_path / "errors.jsonl")
    )
    assert code == 0, stderr
    assert f"resuming: lines up to {imported} were finished by a stopped run" in stderr
    assert summary["from_checkpoint"] == imported
    assert (summary["imported"], summary["skipped"]) == (total - imported, imported)
    assert await count_stored(services, source) == total
    assert not checkpoint.exists()
