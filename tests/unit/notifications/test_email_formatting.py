"""Locale-aware money and date formatting used by the email templates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from mailbox_service.mail.formatting import format_date, format_money


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        ("84.20", "EUR", "de", "84,20 €"),
        ("84.20", "EUR", "en", "€84.20"),
        ("1284.2", "EUR", "de", "1.284,20 €"),
        ("1284.2", "EUR", "en", "€1,284.20"),
        ("1234567.891", "EUR", "en", "€1,234,567.89"),
        ("-5", "EUR", "de", "-5,00 €"),
        ("-5", "USD", "en", "-$5.00"),
        ("12", "CHF", "en", "CHF 12.00"),
        ("12", "CHF", "de", "12,00 CHF"),
        ("1500", "JPY", "en", "¥1,500"),
        ("0.125", "EUR", "en", "€0.12"),  # half-even: no systematic upward drift
        ("0.135", "EUR", "en", "€0.14"),
        ("84.20", "EUR", "de-AT", "84,20 €"),  # region falls back to its language
        ("84.20", "EUR", "fr", "€84.20"),  # unknown language falls back to English
        ("84.20", "EUR", None, "€84.20"),
    ],
)
def test_money(amount: str, currency: str, locale: str | None, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


def test_money_accepts_decimal_and_rejects_garbage() -> None:
    assert format_money(Decimal("84.2"), "EUR", "de") == "84,20 €"
    with pytest.raises(ValueError, match="not a decimal"):
        format_money("eighty", "EUR", "de")


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (dt.date(2026, 12, 15), "de", "15.12.2026"),
        (dt.date(2026, 12, 15), "en", "15 Dec 2026"),
        (dt.date(2026, 1, 5), "de", "05.01.2026"),
        (dt.date(2026, 1, 5), "en", "5 Jan 2026"),
        (dt.date(2026, 1, 5), "en-GB", "5 Jan 2026"),
        # A datetime is shown by its UTC date, whatever offset it carries.
        (
            dt.datetime(2026, 3, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "de",
            "28.02.2026",
        ),
    ],
)
def test_date(value: dt.date, locale: str, expected: str) -> None:
    assert format_date(value, locale) == expected
