"""ViewWriter: outbox views merged per document, in small bulk writes, flushed on close."""

from __future__ import annotations

import time
from typing import Any

from pymongo import UpdateOne

from mailbox_service.notifications.views import ViewWriter, merge_into


class RecordingCollection:
    """Stands in for a collection: keeps each bulk write it gets (what we assert on)."""

    def __init__(self) -> None:
        self.bulks: list[list[UpdateOne]] = []

    def bulk_write(self, updates: list[UpdateOne], ordered: bool = True) -> None:
        self.bulks.append(list(updates))

    def sets(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for bulk in self.bulks:
            for update in bulk:
                merged.setdefault(update._filter["_id"], {}).update(update._doc["$set"])
        return merged


def test_merge_keeps_the_newest_state_per_channel() -> None:
    fields: dict[str, Any] = {}
    merge_into(fields, "email", {"status": "sent", "version": 2})
    merge_into(fields, "email", {"status": "sending", "version": 1})  # late, older: ignored
    merge_into(fields, "realtime", {"status": "sent", "version": 2})
    assert fields == {
        "notifications.email": {"status": "sent", "version": 2},
        "notifications.realtime": {"status": "sent", "version": 2},
    }


def _writer(collection: RecordingCollection, settle_s: float) -> ViewWriter:
    return ViewWriter(collection, settle_s=settle_s, batch=8)  # type: ignore[arg-type]


def test_both_channels_of_a_document_go_out_as_one_update() -> None:
    collection = RecordingCollection()
    writer = _writer(collection, settle_s=5.0)
    writer.start()
    writer.submit("d1", "realtime", {"status": "sent", "version": 2})
    writer.submit("d1", "email", {"status": "sent", "version": 2})
    deadline = time.monotonic() + 2
    while not collection.bulks and time.monotonic() < deadline:
        time.sleep(0.01)
    # Complete long before the 5 s settle time: nothing left to wait for.
    assert [len(bulk) for bulk in collection.bulks] == [1]
    assert set(collection.sets()["d1"]) == {"notifications.email", "notifications.realtime"}
    writer.close()


def test_a_lone_channel_waits_its_settle_time_then_goes_out() -> None:
    collection = RecordingCollection()
    writer = _writer(collection, settle_s=0.2)
    writer.start()
    writer.submit("d2", "email", {"status": "failed", "version": 2})
    time.sleep(0.05)
    assert collection.bulks == []
    time.sleep(0.4)
    assert collection.sets() == {"d2": {"notifications.email": {"status": "failed", "version": 2}}}
    writer.close()


def test_bulk_writes_stay_small_and_close_flushes_everything() -> None:
    collection = RecordingCollection()
    writer = _writer(collection, settle_s=60.0)
    writer.start()
    for n in range(20):
        writer.submit(f"doc{n}", "email", {"status": "sent", "version": 2})
    writer.close()
    assert not writer.is_alive()
    assert len(collection.sets()) == 20
    assert max(len(bulk) for bulk in collection.bulks) <= 8  # FerretDB deadlocks on big ones
