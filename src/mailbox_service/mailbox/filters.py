"""The list filters of `GET /v1/mailbox/documents`, parsed from query strings.

Each bad value is a 400 naming its parameter. `archived` defaults to false: the inbox hides
archived documents, and `archived=true` lists only the archived ones.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import BadRequest
from mailbox_service.types import AccountId
from mailbox_service.untrusted import quoted

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class InvalidParameter(BadRequest):
    """A query parameter has a value we cannot use; `field` names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}", field=name)


class ListFilters(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything that selects which documents a list shows (not where a page starts)."""

    account: str | None = None
    type: str | None = None
    unread: bool | None = None
    archived: bool = False
    issued_from: dt.datetime | None = None
    issued_to: dt.datetime | None = None

    def canonical(self) -> bytes:
        """Stable bytes of the filter set; a cursor is bound to their digest."""
        return msgspec.json.encode(self)


def parse_instant(name: str, raw: str, *, end_of_day: bool) -> dt.datetime:
    """An RFC 3339 time with offset, or a date (UTC; the whole day counts for `end_of_day`)."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            return start + dt.timedelta(days=1) if end_of_day else start
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            name,
            f"expected a date (2026-01-31) or a time with offset (2026-01-31T12:00:00Z); "
            f"got {quoted(raw)}",
        ) from None
    if value.tzinfo is None:
        raise InvalidParameter(name, "a time needs an offset, e.g. 2026-01-31T12:00:00Z")
    return value.astimezone(dt.UTC)


def parse_filters(
    registry: DocumentTypeRegistry,
    *,
    account: str | None,
    type: str | None,
    unread: bool | None,
    archived: bool | None,
    issued_from: str | None,
    issued_to: str | None,
) -> ListFilters:
    if account is not None:
        try:
            msgspec.convert(account, AccountId)
        except msgspec.ValidationError:
            raise InvalidParameter("account", f"{quoted(account)} is not an account id") from None
    if type is not None and type not in registry:
        raise InvalidParameter(
            "type", f"unknown document type {quoted(type)}; known: {', '.join(registry.names())}"
        )
    start = parse_instant("issued_from", issued_from, end_of_day=False) if issued_from else None
    end = parse_instant("issued_to", issued_to, end_of_day=True) if issued_to else None
    if start is not None and end is not None and end <= start:
        raise InvalidParameter("issued_to", "must be later than issued_from")
    return ListFilters(
        account=account,
        type=type,
        unread=unread,
        archived=bool(archived),
        issued_from=start,
        issued_to=end,
    )
