"""Time as the service stores and reads it: aware UTC datetimes, at MongoDB's precision.

Every package takes "now" from `utcnow` and parses a client's time filter with `parse_time`,
so a stored value and a filter compare the same way everywhere.
"""

from __future__ import annotations

import datetime as dt

from mailbox_service.errors import BadRequest
from mailbox_service.untrusted import quoted


def utcnow() -> dt.datetime:
    """Now, truncated to milliseconds: what MongoDB stores, so values round-trip equal."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_time(value: str | None, name: str) -> dt.datetime | None:
    """A date (`2026-11-01`, midnight UTC) or an ISO 8601 time (`...T10:00:00Z`)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(
            f"{name}: expected a date or an ISO 8601 time, got {quoted(value)}", field=name
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
