"""The per-day hash chain on FerretDB: one valid chain from concurrent writers, and `verify`
finds an edited, a deleted and a relinked entry. Each test writes to a database of its own."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import msgspec
import pytest
from pymongo.errors import PyMongoError

from app_fixtures import cli, free_port
from audit_fixtures import own_database
from mailbox_service.audit import OPERATOR
from mailbox_service.audit.entry import day_of, entry_hash
from mailbox_service.clock import utcnow
from mailbox_service.settings import Settings
from mailbox_service.wiring.services import Services


@pytest.fixture
async def isolated(settings: Settings) -> AsyncIterator[tuple[Settings, Services]]:
    own = own_database(settings, flush_interval_s=0.05, batch_size=40)
    services = Services.build(own)
    yield own, services
    await services.mongo.drop_database(own.mongo.database)
    await services.close()


async def write(services: Services, n: int, tag: str) -> None:
    for i in range(n):
        await services.audit.record(
            "document.read", {"kind": "portal", "sub": tag}, document_id=f"{tag}-{i}"
        )
        if i % 7 == 0:
            await asyncio.sleep(0)  # let the other writers interleave


async def test_two_services_writing_at_once_keep_one_valid_chain(
    isolated: tuple[Settings, Services],
) -> None:
    own, first = isolated
    second = Services.build(own)  # a second API process: its own buffer, its own flusher
    try:
        per_writer = 300
        await asyncio.gather(
            write(first, per_writer, "a1"),
            write(second, per_writer, "b1"),
            write(first, per_writer, "a2"),
            write(second, per_writer, "b2"),
        )
        await asyncio.gather(first.audit.flush(), second.audit.flush())
    finally:
        await second.close()
    day = day_of(utcnow())
    report = await first.audit.chain.verify_day(day)
    assert report.ok, report
    assert report.entries == report.head_seq == 4 * per_writer
    seqs = [doc["seq"] async for doc in first.database.audit.find({}, {"seq": 1})]
    assert sorted(seqs) == list(range(1, 4 * per_writer + 1))
    # Both processes really contended for the head: their batches interleave in the chain.
    writers = [
        doc["actor_id"][0]
        async for doc in first.database.audit.find({}, {"actor_id": 1}).sort("_id", 1)
    ]
    switches = sum(1 for x, y in itertools.pairwise(writers) if x != y)
    assert switches >= 2


async def chained_day(services: Services, n: int) -> str:
    await write(services, n, "w")
    await services.audit.flush()
    day = day_of(utcnow())
    assert (await services.audit.chain.verify_day(day)).ok
    return day


async def test_verify_finds_an_edited_entry(isolated: tuple[Settings, Services]) -> None:
    own, services = isolated
    day = await chained_day(services, 10)
    audit = services.database.audit
    await audit.update_one({"seq": 4}, {"$set": {"document_id": "someone-else"}})
    report = await services.audit.chain.verify_day(day)
    assert not report.ok
    assert report.seq == 4
    assert "do not match its hash" in (report.problem or "")

    result = cli(
        "audit",
        "verify",
        "--day",
        day,
        env={"MAILBOX_MONGO_DATABASE": own.mongo.database},
        check=False,
    )
    assert result.returncode == 1
    assert f"{day}  FAILED at entry 4" in result.stdout


async def test_verify_finds_an_entry_edited_with_its_hash_recomputed(
    isolated: tuple[Settings, Services],
) -> None:
    _, services = isolated
    day = await chained_day(services, 10)
    audit = services.database.audit
    doc = await audit.find_one({"seq": 6})
    assert doc is not None
    doc["actor"] = OPERATOR
    await audit.replace_one({"_id": doc["_id"]}, {**doc, "hash": entry_hash(doc)})
    report = await services.audit.chain.verify_day(day)
    assert not report.ok
    assert report.seq == 7
    assert "prev_hash is not the hash of entry 6" in (report.problem or "")


async def test_verify_finds_deleted_entries_in_the_middle_and_at_the_end(
    isolated: tuple[Settings, Services],
) -> None:
    own, services = isolated
    day = await chained_day(services, 10)
    audit = services.database.audit
    await audit.delete_one({"seq": 10})
    report = await services.audit.chain.verify_day(day)
    assert (report.ok, report.seq, report.problem) == (False, 10, "gap: entries 10 missing")

    await audit.delete_many({"seq": {"$in": [3, 4]}})
    report = await services.audit.chain.verify_day(day)
    assert (report.ok, report.seq, report.problem) == (False, 3, "gap: entries 3..4 missing")

    result = cli("audit", "verify", env={"MAILBOX_MONGO_DATABASE": own.mongo.database}, check=False)
    assert result.returncode == 1
    assert "gap: entries 3..4 missing" in result.stdout


async def test_verify_passes_an_intact_chain_from_the_cli(
    isolated: tuple[Settings, Services],
) -> None:
    own, services = isolated
    day = await chained_day(services, 25)
    result = cli("audit", "verify", env={"MAILBOX_MONGO_DATABASE": own.mongo.database})
    assert result.stdout.strip() == f"{day}  ok  25 entries"


async def test_a_batch_whose_insert_failed_is_written_later_with_the_same_positions(
    isolated: tuple[Settings, Services],
) -> None:
    # The compare-and-set claimed positions 1..5 but the insert never happened (MongoDB went
    # away): until it is written, verify sees a gap; the trail keeps it and writes it next.
    _, services = isolated
    await write(services, 5, "w")
    pending = services.audit._buffer[:]
    services.audit._buffer.clear()
    chained = await services.audit.chain.extend(pending)
    day = day_of(utcnow())
    report = await services.audit.chain.verify_day(day)
    assert (report.ok, report.problem) == (False, "gap: entries 1..5 missing")
    services.audit._unwritten = chained
    await write(services, 3, "later")
    await services.audit.flush()
    report = await services.audit.chain.verify_day(day)
    assert report.ok, report
    assert report.entries == 8


async def test_verify_of_every_day_finds_a_day_whose_head_was_deleted(
    isolated: tuple[Settings, Services],
) -> None:
    own, services = isolated
    day = await chained_day(services, 5)
    await services.database.audit_heads.delete_one({"_id": day})
    assert await services.audit.chain.days() == [day]
    result = cli("audit", "verify", env={"MAILBOX_MONGO_DATABASE": own.mongo.database}, check=False)
    assert result.returncode == 1
    assert "the day's head document is missing" in result.stdout


async def test_with_mongodb_down_entries_wait_in_a_bounded_buffer(settings: Settings) -> None:
    """Nothing is written and nothing is lost while MongoDB is unreachable, up to max_buffer;
    beyond it the oldest entries go (and `audit.dropped` says how many)."""
    down = msgspec.structs.replace(
        own_database(settings, max_buffer=3, flush_interval_s=60),
        mongo=msgspec.structs.replace(
            settings.mongo, url=f"mongodb://127.0.0.1:{free_port()}/", timeout_ms=200
        ),
    )
    services = Services.build(down)
    try:
        await write(services, 5, "w")
        assert services.audit.buffered == 3
        with pytest.raises(PyMongoError):
            await services.audit.flush()
        assert services.audit.buffered == 3  # the failed batch went back into the buffer
        kept = [entry["document_id"] for entry in services.audit._buffer]
        assert kept == ["w-2", "w-3", "w-4"]
    finally:
        services.audit._buffer.clear()  # nothing to write on close: the server is not there
        await services.close()
