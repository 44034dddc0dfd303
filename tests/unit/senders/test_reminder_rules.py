"""Reminder rules without a database: the due window, why a document is skipped, the claim's
condition, and the reminder templates of every type and locale."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mailbox_service.doctypes import DocumentTypeRegistry, load_registry
from mailbox_service.doctypes.invoice import Invoice, InvoiceAttributes
from mailbox_service.errors import ConfigurationError
from mailbox_service.mail.email import (
    EmailRenderer,
    RenderError,
    message_id,
    template_names,
)
from mailbox_service.notifications.preview import render_preview, sample_document
from mailbox_service.paths import templates_dir
from mailbox_service.senders.reminder_due import due_at, initial_reminder
from mailbox_service.senders.reminders import (
    KIND,
    ReminderReport,
    claim_filter,
    skip_reason,
    window,
)
from mailbox_service.settings import load_settings

INVOICE = Invoice()
NOW = dt.datetime(2026, 12, 12, 9, 30, tzinfo=dt.UTC)


def eligible(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "d1",
        "type": "invoice",
        "read_at": None,
        "archived_at": None,
        "status": "open",
        "delivery": {"mode": "digital", "email": "a@example.org", "locale": "en"},
        "notifications": {"email": {"status": "sent"}},
        "reminder": {"due_at": due_at(dt.date(2026, 12, 15))},
    }
    doc.update(changes)
    return doc


def test_window_is_today_and_the_next_days_in_utc() -> None:
    assert window(NOW, 3) == [
        due_at(dt.date(2026, 12, 12)),
        due_at(dt.date(2026, 12, 13)),
        due_at(dt.date(2026, 12, 14)),
        due_at(dt.date(2026, 12, 15)),
    ]
    # 23:30 in Berlin on the 11th is already the 11th in UTC, 00:30 on the 12th in Berlin is
    # still the 11th in UTC: the window follows the UTC date.
    berlin = dt.timezone(dt.timedelta(hours=1))
    assert window(dt.datetime(2026, 12, 12, 0, 30, tzinfo=berlin), 0) == [
        due_at(dt.date(2026, 12, 11))
    ]
    assert window(NOW, 0) == [due_at(dt.date(2026, 12, 12))]
    assert window(NOW, -1) == []


def test_due_at_is_midnight_utc() -> None:
    assert due_at(dt.date(2026, 2, 28)) == dt.datetime(2026, 2, 28, tzinfo=dt.UTC)


def test_invoice_is_reminded_by_its_due_date_and_other_types_are_not() -> None:
    attributes = InvoiceAttributes("INV-1", "10.00", "EUR", dt.date(2027, 1, 31))
    assert initial_reminder(INVOICE, attributes) == {"due_at": due_at(dt.date(2027, 1, 31))}
    registry = load_registry()
    shipment = registry.get("shipment_document")
    sample = shipment.validate(shipment.sample_attributes())
    assert initial_reminder(shipment, sample) is None
    assert INVOICE.settled_statuses == {"paid", "cancelled"}
    assert INVOICE.settled_statuses <= INVOICE.statuses


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"status": None}, None),  # stored before statuses existed: open
        ({"status": "overdue"}, None),
        ({"read_at": NOW}, "read"),
        ({"archived_at": NOW}, "archived"),
        ({"status": "paid"}, "status:paid"),
        ({"status": "cancelled"}, "status:cancelled"),
        ({"delivery": {"mode": "print", "email": "a@example.org"}}, "print"),
        ({"delivery": {"mode": "digital", "email": None}}, "no_email"),
        ({"notifications": {"email": {"status": "skipped"}}}, "not_notified"),
        ({"notifications": {"email": {"status": "pending"}}}, "not_notified"),
        ({"notifications": {}}, "not_notified"),
    ],
)
def test_skip_reason(changes: dict[str, Any], reason: str | None) -> None:
    assert skip_reason(eligible(**changes), INVOICE, ACCOUNT) == reason


ACCOUNT = {"_id": "acct-1", "paperless": True}


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        (ACCOUNT, None),
        (None, "account_erased"),
        ({"_id": "acct-1", "erased_at": NOW}, "account_erased"),
        ({"_id": "acct-1", "paperless": False}, "paperless_withdrawn"),
    ],
)
def test_the_account_must_still_want_email(account: dict[str, Any] | None, reason: str) -> None:
    assert skip_reason(eligible(), INVOICE, account) == reason


def test_a_type_that_is_not_installed_is_skipped() -> None:
    assert skip_reason(eligible(), None, ACCOUNT) == "unknown_type"


def test_claim_filter_rechecks_what_can_change_and_takes_only_open_or_expired_claims() -> None:
    condition = claim_filter(eligible(), INVOICE, NOW)
    assert condition["read_at"] is None
    assert condition["archived_at"] is None
    assert condition["delivery.mode"] == "digital"
    assert condition["status"] == {"$nin": ["cancelled", "paid"]}
    assert {"reminder.status": "sending", "reminder.lease_until": {"$lt": NOW}} in condition["$or"]
    assert {"reminder.status": {"$exists": False}} in condition["$or"]
    assert {"reminder.status": "retry"} in condition["$or"]


def test_report_details_name_every_count() -> None:
    report = ReminderReport(at=NOW, dry_run=False, sent=2, failed=1, skipped=Counter(read=3))
    assert report.details() == {
        "at": NOW.isoformat(),
        "sent": 2,
        "retry": 0,
        "failed": 1,
        "not_claimed": 0,
        "skipped": {"read": 3},
    }


def test_template_names_and_message_id_of_a_kind() -> None:
    assert template_names("notification") == ("subject.txt.j2", "body.txt.j2", "body.html.j2")
    assert template_names(KIND)[0] == "reminder.subject.txt.j2"
    sender = "Mailbox <no-reply@example.org>"
    assert message_id("d1", sender) == "<d1.notification@example.org>"
    assert message_id("d1", sender, KIND) == "<d1.reminder@example.org>"


def _renderer(root: Path | None = None) -> EmailRenderer:
    return EmailRenderer(root or templates_dir() / "email", portal_url="https://portal.example/p")


@pytest.mark.parametrize("type_name", load_registry().names())
@pytest.mark.parametrize("locale", ["en", "de", "de-AT", "fr"])
@pytest.mark.parametrize("days_left", [0, 1, 3])
def test_every_type_renders_a_reminder_in_every_locale(
    type_name: str, locale: str, days_left: int
) -> None:
    """A type without reminder templates of its own gets the generic ones: never a failure."""
    doctype = load_registry().get(type_name)
    if doctype.sample_attributes() is None:
        pytest.skip(f"{type_name} has no sample attributes")
    document = sample_document(doctype, now=NOW)
    rendered = _renderer().render(
        doctype,
        document,
        locale=locale,
        kind=KIND,
        extra={"due_on": dt.date(2026, 12, 15), "days_left": days_left},
    )
    assert rendered.locale == ("de" if locale.startswith("de") else "en")
    assert rendered.subject.startswith("Erinnerung" if rendered.locale == "de" else "Reminder")
    word = {0: ("today", "heute"), 1: ("tomorrow", "morgen"), 3: ("3 days", "3 Tagen")}[days_left]
    assert word[rendered.locale == "de"] in rendered.text
    link = f"https://portal.example/p/documents/{document.id}"
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html


def test_invoice_reminder_shows_amount_and_due_date_per_locale() -> None:
    document = sample_document(INVOICE, now=NOW)
    extra = {"due_on": dt.date(2026, 12, 15), "days_left": 3}
    english = _renderer().render(INVOICE, document, locale="en", kind=KIND, extra=extra)
    assert english.subject == (
        "Reminder: your invoice INV-2026-000123 (€1,284.20) is due on 15 Dec 2026"
    )
    assert "due in 3 days" in english.text
    german = _renderer().render(INVOICE, document, locale="de", kind=KIND, extra=extra)
    assert german.subject == (
        "Erinnerung: Ihre Rechnung INV-2026-000123 (1.284,20 €) ist am 15.12.2026 fällig"
    )
    assert "1.284,20 €" in german.html
    assert "in 3 Tagen fällig" in german.text


def test_a_type_folder_without_reminder_templates_uses_the_generic_ones(tmp_path: Path) -> None:
    root = tmp_path / "email"
    source = templates_dir() / "email"
    for folder in ("_base", "_default"):
        for path in (source / folder).rglob("*.j2"):
            target = root / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    # The invoice's notification templates only: its reminder falls back to `_default`.
    for path in (source / "invoice").rglob("*.j2"):
        if not path.name.startswith("reminder."):
            target = root / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    document = sample_document(INVOICE, now=NOW)
    rendered = _renderer(root).render(
        INVOICE,
        document,
        locale="en",
        kind=KIND,
        extra={"due_on": dt.date(2026, 12, 15), "days_left": 2},
    )
    assert rendered.subject == "Reminder: Invoice INV-2026-000123 is due on 15 Dec 2026"
    # Without the kind's extra values the templates cannot render: a clear error.
    with pytest.raises(RenderError, match="days_left"):
        _renderer(root).render(INVOICE, document, locale="en", kind=KIND)


def test_reminder_settings_are_read_from_the_environment() -> None:
    settings = load_settings(
        {"MAILBOX_REMINDER_DAYS_BEFORE_DUE": "5", "MAILBOX_REMINDER_INTERVAL_S": "0"}
    )
    assert settings.reminder.days_before_due == 5
    assert settings.reminder.interval_s == 0
    assert load_settings({}).reminder.days_before_due == 3


def test_email_preview_shows_the_reminder_as_the_pass_would_send_it() -> None:
    settings = load_settings({"MAILBOX_PORTAL_URL": "https://portal.example/p"})
    document = sample_document(INVOICE, now=NOW)
    eml = render_preview(
        _renderer(),
        INVOICE,
        document,
        locale="en",
        fmt="eml",
        settings=settings,
        now=NOW,
        kind=KIND,
    ).decode()
    assert "Subject: Reminder: your invoice INV-2026-000123" in eml
    assert f"Message-ID: <{document.id}.reminder@mailbox.invalid>" in eml
    text = render_preview(
        _renderer(), INVOICE, document, locale="en", fmt="text", settings=settings, now=NOW
    ).decode()
    assert text.startswith("Subject: Your invoice INV-2026-000123")


def test_settled_statuses_outside_the_types_statuses_stop_start_up() -> None:
    class Careless(Invoice):
        name = "careless_invoice"
        settled_statuses = frozenset({"paid", "settled"})

    with pytest.raises(ConfigurationError, match=r"careless_invoice.*settled_statuses settled"):
        DocumentTypeRegistry([Careless()])


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAILBOX_REMINDER_DAYS_BEFORE_DUE", "-1"),
        ("MAILBOX_REMINDER_MAX_ATTEMPTS", "0"),
        ("MAILBOX_REMINDER_BATCH_SIZE", "0"),
    ],
)
def test_a_reminder_setting_out_of_range_stops_start_up(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})
