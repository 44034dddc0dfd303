"""Pure rules of the notification pipeline: failure classification, backoff, admin helpers."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest

from mailbox_service.admin.service import (
    day_slices,
    list_digest,
    parse_channel,
    parse_status,
    stats_window,
)
from mailbox_service.clock import parse_time
from mailbox_service.cursors import CursorSigner, Position
from mailbox_service.errors import BadRequest
from mailbox_service.mail.smtp import classify
from mailbox_service.notifications.delivery import RetryPolicy
from mailbox_service.storage.outbox.operations import day_pipeline
from mailbox_service.storage.outbox.states import (
    claimed_state,
    is_claimable,
    is_lost,
    is_resendable,
    lost,
    outcome_state,
    resend_state,
    version_of,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"5.1.1 no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (452, b"4.2.2 mailbox full")}), False),
        # One permanent and one temporary refusal: trying again can still help.
        (
            smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no"), "b@x.org": (451, b"later")}),
            False,
        ),
        (smtplib.SMTPDataError(554, b"5.7.1 message rejected"), True),
        (smtplib.SMTPDataError(451, b"4.3.0 try later"), False),
        (smtplib.SMTPSenderRefused(553, b"sender not allowed", "no-reply@x.org"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
        (TimeoutError("timed out"), False),
    ],
)
def test_smtp_failure_classification(error: Exception, permanent: bool) -> None:
    failure = classify(error)
    assert failure.permanent is permanent
    assert failure.message  # operators always get a message


def test_classification_message_names_code_and_text() -> None:
    failure = classify(smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"5.1.1 no such user")}))
    assert "550" in failure.message
    assert "no such user" in failure.message


def test_backoff_doubles_and_caps() -> None:
    policy = RetryPolicy(max_attempts=6, min_backoff_ms=1000, max_backoff_ms=5000)
    assert [policy.delay_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 5000, 5000]
    assert policy.delay_ms(10_000) == 5000  # no overflow on absurd attempt counts


def test_claimable_states() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    later = now + dt.timedelta(seconds=1)
    earlier = now - dt.timedelta(seconds=1)
    assert is_claimable({"status": "pending"}, now)  # as ingest writes it
    assert is_claimable({"status": "pending", "next_at": None}, now)
    assert is_claimable({"status": "pending", "next_at": earlier}, now)
    assert not is_claimable({"status": "pending", "next_at": later}, now)  # backoff not over
    assert is_claimable({"status": "sending", "lease_until": earlier}, now)  # worker died
    assert not is_claimable({"status": "sending", "lease_until": later}, now)
    for final in ("sent", "failed", "skipped"):
        assert not is_claimable({"status": final}, now)


def test_every_change_moves_to_the_next_version() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    claimed = claimed_state(
        {"status": "pending", "attempts": 2, "version": 4},
        "tok",
        "w1",
        now,
        dt.timedelta(seconds=30),
    )
    assert claimed["version"] == 5
    assert claimed["attempts"] == 3
    assert claimed["status"] == "sending"
    assert claimed["lease_until"] == now + dt.timedelta(seconds=30)
    done = outcome_state(claimed, {"status": "sent"})
    assert done["version"] == 6
    assert done["attempts"] == 3
    assert done["lease_until"] is None
    assert done["claim"] is None
    assert version_of({}) == 0


def test_lost_states() -> None:
    now = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    grace = dt.timedelta(seconds=60)
    old = now - dt.timedelta(minutes=5)
    assert is_lost({"status": "pending", "at": old}, now, grace)
    assert not is_lost({"status": "pending", "at": now}, now, grace)
    assert not is_lost({"status": "pending", "at": old, "next_at": now}, now, grace)
    assert is_lost({"status": "sending", "lease_until": old}, now, grace)
    assert not is_lost({"status": "sending", "lease_until": now + grace}, now, grace)
    assert not is_lost({"status": "sent", "at": old}, now, grace)


def test_lost_filter_waits_a_grace_period() -> None:
    now = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    query = lost("realtime", now, dt.timedelta(seconds=60))
    cutoff = now - dt.timedelta(seconds=60)
    assert query["$or"][0]["notifications.realtime.at"] == {"$lt": cutoff}
    assert query["$or"][0]["notifications.realtime.next_at"] == {"$not": {"$gte": cutoff}}
    assert query["$or"][1]["notifications.realtime.lease_until"] == {"$lt": now}


def test_stats_window_defaults_and_limits() -> None:
    now = dt.datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert stats_window(None, None, now) == (now - dt.timedelta(days=7), now)
    naive = dt.datetime(2026, 11, 1)
    assert stats_window(naive, None, now)[0] == naive.replace(tzinfo=UTC)
    with pytest.raises(BadRequest, match="before until"):
        stats_window(now, now, now)
    with pytest.raises(BadRequest, match="at most"):
        stats_window(now - dt.timedelta(days=400), now, now)


def test_day_slices_clip_to_the_window() -> None:
    since = dt.datetime(2026, 11, 1, 18, tzinfo=UTC)
    until = dt.datetime(2026, 11, 3, 6, tzinfo=UTC)
    assert day_slices(since, until) == [
        ("2026-11-01", since, dt.datetime(2026, 11, 2, tzinfo=UTC)),
        ("2026-11-02", dt.datetime(2026, 11, 2, tzinfo=UTC), dt.datetime(2026, 11, 3, tzinfo=UTC)),
        ("2026-11-03", dt.datetime(2026, 11, 3, tzinfo=UTC), until),
    ]


def test_day_pipeline_uses_only_ferretdb_stages() -> None:
    stages = {
        next(iter(stage)) for stage in day_pipeline(dt.datetime.now(UTC), dt.datetime.now(UTC))
    }
    assert stages <= {"$match", "$group", "$project", "$sort", "$unwind", "$count", "$limit"}


def test_cursor_round_trip_and_garbage() -> None:
    at = dt.datetime(2026, 11, 20, 12, 0, 0, 123000, tzinfo=UTC)
    # The admin list's cursors are the signed codec's, bound to the list's status and channels.
    cursors, digest = CursorSigner(b"admin-list-test-key-0123456789ab"), list_digest("failed", ())
    assert cursors.decode(cursors.encode(Position(at, "doc1"), digest), digest) == (
        Position(at, "doc1")
    )
    for bad in ("!!!", "bm90IGpzb24", cursors.encode(Position(at, "x"), digest)[:-3]):
        with pytest.raises(BadRequest, match="cursor"):
            cursors.decode(bad, digest)


def test_parse_helpers() -> None:
    assert parse_channel("email") == "email"
    with pytest.raises(BadRequest, match="unknown channel 'sms'") as info:
        parse_channel("sms")
    assert info.value.field == "channel"
    assert info.value.status_code == 400
    with pytest.raises(BadRequest):
        parse_channel(None)
    assert parse_status("failed") == "failed"
    with pytest.raises(BadRequest, match="unknown status"):
        parse_status("lost")
    assert parse_time("2026-11-01", "since") == dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_time("2026-11-01T10:00:00Z", "since") == dt.datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert parse_time(None, "since") is None
    with pytest.raises(BadRequest, match="since"):
        parse_time("yesterday", "since")


def test_resend_is_refused_only_while_a_lease_is_live() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert is_resendable({"status": "failed"}, now)
    assert is_resendable({"status": "sending", "lease_until": now - dt.timedelta(1)}, now)
    assert not is_resendable({"status": "sending", "lease_until": now + dt.timedelta(1)}, now)
    fresh = resend_state({"version": 7, "attempts": 6}, now, "ops")
    assert fresh["status"] == "pending"
    assert fresh["attempts"] == 0
    assert fresh["version"] == 8
    assert fresh["reason"] == "resent by ops"
