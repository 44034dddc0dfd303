"""Sender event ids and the stored form: what the feed cursor and webhook ids rest on."""

from __future__ import annotations

import datetime as dt

import msgspec
from bson import ObjectId

from mailbox_service.senders.events import (
    EVENT_DESCRIPTIONS,
    EVENT_TYPES,
    SenderEvent,
    event_id,
    new_event,
    object_id_of,
    to_event,
)

DOCUMENT = {"_id": "doc-1", "source": "erp", "source_ref": "INV-1", "type": "invoice"}


def test_an_event_id_maps_back_to_its_stored_id() -> None:
    stored = ObjectId()
    assert event_id(stored).startswith("evt_")
    assert object_id_of(event_id(stored)) == stored


def test_text_that_is_not_an_event_id_maps_to_nothing() -> None:
    for text in ("", "evt_", "evt_xyz", "evt_" + "0" * 23, "evt_" + "g" * 24, "é" * 24):
        assert object_id_of(text) is None


def test_the_stored_event_carries_the_document_facts_and_waits_for_dispatch() -> None:
    at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    stored = new_event(DOCUMENT, "document.read", {"at": "x"}, at=at)
    assert stored["dispatched"] is False
    event = to_event(stored)
    assert event == SenderEvent(
        id=event_id(stored["_id"]),
        type="document.read",
        occurred_at=at,
        document_id="doc-1",
        source_ref="INV-1",
        document_type="invoice",
        data={"at": "x"},
    )
    # The sender's own name for its system is not repeated to it, and no actor is named.
    assert set(msgspec.to_builtins(event)) == {
        "id",
        "type",
        "occurred_at",
        "document_id",
        "source_ref",
        "document_type",
        "data",
    }


def test_ids_of_later_events_sort_after_earlier_ones_across_seconds() -> None:
    earlier = ObjectId.from_datetime(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    later = ObjectId()
    assert event_id(earlier) < event_id(later)


def test_every_event_type_is_described() -> None:
    assert set(EVENT_DESCRIPTIONS) == set(EVENT_TYPES)
