"""Locale-aware money and date formatting for email templates.

A small table instead of Babel: we ship German and English templates, and these two formats are
all they need. Another locale is one more `LocaleFormat` entry; an unknown locale falls back to
its language, then to English.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
"""Currencies shown with a symbol; every other code is shown as the code itself (CHF 12.00)."""

ZERO_DECIMAL = frozenset({"JPY", "KRW", "ISK", "CLP", "VND"})
"""ISO 4217 currencies without minor units."""


@dataclass(frozen=True)
class LocaleFormat:
    decimal: str
    group: str
    symbol_first: bool
    """`€84.20` (True) or `84,20 €` (False)."""
    date_pattern: str
    """`{d}`, `{dd}`, `{mm}`, `{mon}`, `{yyyy}` placeholders."""


FORMATS: dict[str, LocaleFormat] = {
    "en": LocaleFormat(".", ",", True, "{d} {mon} {yyyy}"),
    "de": LocaleFormat(",", ".", False, "{dd}.{mm}.{yyyy}"),
}
FALLBACK = "en"


def locale_format(locale: str | None) -> LocaleFormat:
    """The format of `de-AT` is `de-AT`'s if defined, else `de`'s, else English."""
    if locale:
        if locale in FORMATS:
            return FORMATS[locale]
        language = locale.split("-", 1)[0].split("_", 1)[0].lower()
        if language in FORMATS:
            return FORMATS[language]
    return FORMATS[FALLBACK]


def _group_digits(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return separator.join(parts)


def format_money(amount: Decimal | str | int, currency: str, locale: str | None) -> str:
    """`84.20 EUR` → `€84.20` (en) or `84,20 €` (de); rounds half-even to the minor unit."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"not a decimal amount: {amount!r}") from None
    fmt = locale_format(locale)
    places = 0 if currency in ZERO_DECIMAL else 2
    quantum = Decimal(1).scaleb(-places)
    value = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    whole, _, fraction = f"{abs(value):f}".partition(".")
    number = _group_digits(whole, fmt.group) + (fmt.decimal + fraction if places else "")
    symbol = SYMBOLS.get(currency)
    if fmt.symbol_first:
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency} {number}"
    return f"{sign}{number} {symbol or currency}"


def format_date(value: dt.date | dt.datetime, locale: str | None) -> str:
    """`2026-12-15` → `15 Dec 2026` (en) or `15.12.2026` (de); datetimes by their UTC date."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    fmt = locale_format(locale)
    return fmt.date_pattern.format(
        d=value.day,
        dd=f"{value.day:02d}",
        mm=f"{value.month:02d}",
        mon=_MONTHS_EN[value.month - 1],
        yyyy=f"{value.year:04d}",
    )
