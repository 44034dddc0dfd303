"""The small rules behind the print fallback: what counts as a refusal, what a sender may see,
which Message-IDs are ours, which documents the acknowledgement pass asks for."""

from __future__ import annotations

import datetime as dt
import smtplib

import msgspec
import pytest

from mailbox_devtools.devstack.smtp_capture import rcpt_reply
from mailbox_service.doctypes.contract_letter import ContractLetter
from mailbox_service.doctypes.invoice import Invoice
from mailbox_service.errors import InvalidMetadata
from mailbox_service.mail.email import message_id
from mailbox_service.mail.failures import RelayRefused
from mailbox_service.mail.smtp import classify
from mailbox_service.senders.acknowledgement import due_query, reason_for
from mailbox_service.senders.bounces import (
    decode_report,
    document_of_message_id,
    normalised_message_id,
)
from mailbox_service.senders.email_outcomes import MASK, already_read, for_sender


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"5.1.1 no such user")}), True),
        (smtplib.SMTPDataError(554, b"5.7.1 rejected as spam"), True),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (450, b"4.2.1 busy")}), False),
        (smtplib.SMTPDataError(451, b"4.3.0 try later"), False),
        (ConnectionRefusedError(111, "refused"), False),
    ],
)
def test_only_a_5xx_for_the_message_is_a_relay_refusal(error: Exception, refused: bool) -> None:
    assert isinstance(classify(error), RelayRefused) is refused


def test_a_sender_never_sees_an_email_address() -> None:
    reply = "SMTP recipient refused: ann.o'neil+x@mail.example.org: 550 5.1.1 <ann@example.org>: no"
    shown = for_sender(reply)
    assert "@" not in shown
    assert shown == f"SMTP recipient refused: {MASK}: 550 5.1.1 <{MASK}>: no"
    assert len(for_sender("x" * 2000)) == 500
    assert for_sender("550 5.1.1 mailbox unavailable") == "550 5.1.1 mailbox unavailable"


def test_read_means_opened_once_at_least() -> None:
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    assert not already_read({"read_at": None})
    assert already_read({"read_at": None, "first_read_at": now})  # marked unread again
    assert already_read({"read_at": now})


def test_our_message_ids_name_their_document() -> None:
    ours = message_id("8c1e0f5a7d2b4c19", "Mailbox <no-reply@example.org>")
    assert document_of_message_id(ours) == "8c1e0f5a7d2b4c19"
    assert normalised_message_id(" 8c1e.notification@example.org ") == (
        "<8c1e.notification@example.org>"
    )
    for other in ("<abc@example.org>", "<a b.notification@x>", "8c1e.notification@x", "<>"):
        assert document_of_message_id(other) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "550"}, "document_id"),
        ({"reason": "550", "document_id": "d1", "message_id": "<m@x>"}, "document_id"),
        ({"document_id": "d1"}, "reason"),
        ({"document_id": "d1", "reason": " \t"}, "reason"),
        ({"document_id": "bad id", "reason": "550"}, "document_id"),
        ({"document_id": "d1", "reason": "550", "permanent": "no"}, "permanent"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_bounce_is_refused_naming_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidMetadata) as raised:
        decode_report(body)
    assert raised.value.field == field


def test_a_bounce_names_one_email() -> None:
    report = decode_report({"message_id": "<m@x>", "reason": "550"})
    assert report.message_id == "<m@x>"
    assert report.document_id is msgspec.UNSET
    assert report.permanent is True


def test_the_capture_refuses_and_defers_by_local_part() -> None:
    assert (rcpt_reply("Refuse-ann@example.org") or "").startswith("550 5.1.1")
    assert (rcpt_reply("defer-bob@example.org") or "").startswith("450 4.2.1")
    assert rcpt_reply("ann@refuse-example.org") is None
    assert rcpt_reply("ann@example.org") is None


def test_the_pass_asks_for_unread_termination_letters_past_five_days() -> None:
    at = dt.datetime(2026, 12, 10, tzinfo=dt.UTC)
    letter = ContractLetter()
    assert due_query(letter, at) == {
        "type": "contract_letter",
        "first_read_at": None,
        "delivery.mode": "digital",
        "created_at": {"$lte": dt.datetime(2026, 12, 5, tzinfo=dt.UTC)},
        "attributes.letter_kind": "termination_confirmation",
    }
    assert reason_for(letter).startswith("not read within 5 days")
    assert Invoice.print_if_unread_after is None
