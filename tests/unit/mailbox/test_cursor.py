"""Keyset cursors: opaque, tamper-proof, bound to their filters; and the filters they bind to."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from mailbox_service.cursors import CursorSigner, InvalidCursor, Position, filters_digest
from mailbox_service.doctypes import load_registry
from mailbox_service.mailbox.filters import InvalidParameter, ListFilters, parse_filters
from mailbox_service.settings import AuthSettings

KEY = b"k" * 32
POSITION = Position(dt.datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=dt.UTC), "a" * 32)
INBOX = filters_digest(ListFilters().canonical())
UNREAD = filters_digest(ListFilters(unread=True).canonical())


def test_round_trip_keeps_millisecond_and_id() -> None:
    signer = CursorSigner(KEY)
    cursor = signer.encode(POSITION, INBOX)
    assert signer.decode(cursor, INBOX) == POSITION


def test_every_single_character_change_is_detected() -> None:
    signer = CursorSigner(KEY)
    cursor = signer.encode(POSITION, INBOX)
    alphabet = "ABCabc012-_."
    for index in range(len(cursor)):
        replacement = next(c for c in alphabet if c != cursor[index])
        tampered = cursor[:index] + replacement + cursor[index + 1 :]
        with pytest.raises(InvalidCursor):
            signer.decode(tampered, INBOX)


def test_a_forged_position_with_a_guessed_mac_is_refused() -> None:
    signer = CursorSigner(KEY)
    payload = base64.urlsafe_b64encode(b'[1,0,"zzzz","' + INBOX.encode() + b'"]').rstrip(b"=")
    with pytest.raises(InvalidCursor, match="not a cursor issued by this service") as raised:
        signer.decode(payload.decode() + ".AAAAAAAAAAAAAAAAAAAAAA", INBOX)
    assert raised.value.field == "cursor"
    assert raised.value.status_code == 400


def test_cursor_of_other_filters_is_refused_with_its_own_message() -> None:
    signer = CursorSigner(KEY)
    cursor = signer.encode(POSITION, INBOX)
    with pytest.raises(InvalidCursor, match="other filters"):
        signer.decode(cursor, UNREAD)


def test_cursor_of_another_key_is_refused() -> None:
    cursor = CursorSigner(b"x" * 32).encode(POSITION, INBOX)
    with pytest.raises(InvalidCursor):
        CursorSigner(KEY).decode(cursor, INBOX)


@pytest.mark.parametrize("garbage", ["", ".", "a.b.c", "abc", "!!!.???", "a" * 600 + ".b"])
def test_garbage_is_a_400_on_the_cursor_field(garbage: str) -> None:
    with pytest.raises(InvalidCursor) as raised:
        CursorSigner(KEY).decode(garbage, INBOX)
    assert raised.value.field == "cursor"


def test_key_sources() -> None:
    explicit = CursorSigner.from_settings(AuthSettings(cursor_secret="c" * 20, jwt_secret="j" * 32))
    derived = CursorSigner.from_settings(AuthSettings(jwt_secret="j" * 32))
    again = CursorSigner.from_settings(AuthSettings(jwt_secret="j" * 32))
    cursor = derived.encode(POSITION, INBOX)
    # Derived keys are stable across processes (same secret, same key)...
    assert again.decode(cursor, INBOX) == POSITION
    # ...differ from the explicit cursor secret...
    with pytest.raises(InvalidCursor):
        explicit.decode(cursor, INBOX)
    # ...and are not the JWT secret itself.
    with pytest.raises(InvalidCursor):
        CursorSigner(("j" * 32).encode()).decode(cursor, INBOX)


def test_a_random_key_is_used_when_no_secret_is_configured() -> None:
    one = CursorSigner.from_settings(AuthSettings())
    two = CursorSigner.from_settings(AuthSettings())
    cursor = one.encode(POSITION, INBOX)
    assert one.decode(cursor, INBOX) == POSITION
    with pytest.raises(InvalidCursor):
        two.decode(cursor, INBOX)


# --- the filters a cursor is bound to ------------------------------------------------------


REGISTRY = load_registry()


def parse(**given: object) -> ListFilters:
    values: dict[str, object] = dict.fromkeys(
        ("account", "type", "unread", "archived", "issued_from", "issued_to")
    )
    values.update(given)
    return parse_filters(REGISTRY, **values)  # type: ignore[arg-type]


def test_every_filter_changes_the_digest() -> None:
    variants = [
        parse(),
        parse(account="A1"),
        parse(type="invoice"),
        parse(unread=True),
        parse(unread=False),
        parse(archived=True),
        parse(issued_from="2026-01-01"),
        parse(issued_to="2026-01-01"),
    ]
    digests = {filters_digest(v.canonical()) for v in variants}
    assert len(digests) == len(variants)


def test_archived_defaults_to_the_inbox() -> None:
    assert parse().archived is False
    assert parse(archived=True).archived is True


def test_dates_and_times() -> None:
    day = parse(issued_from="2026-01-31", issued_to="2026-01-31")
    assert day.issued_from == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    assert day.issued_to == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)  # the whole day counts
    offset = parse(issued_from="2026-01-31T12:00:00+02:00")
    assert offset.issued_from == dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"issued_from": "yesterday"}, "issued_from"),
        ({"issued_from": "2026-01-31T12:00:00"}, "issued_from"),  # no offset
        ({"issued_to": "2026-13-01"}, "issued_to"),
        ({"issued_from": "2026-02-01", "issued_to": "2026-01-01"}, "issued_to"),
        ({"type": "no_such_type"}, "type"),
        ({"account": "not an id"}, "account"),
    ],
)
def test_bad_filter_values_name_their_parameter(given: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        parse(**given)
    assert raised.value.field == field
    assert raised.value.status_code == 400
