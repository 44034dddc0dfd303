"""The `webhook_endpoints` store: where a source's events go, and the secret that signs them.

    _id              "whep_" + 16 hex digits
    source           the sender (an API key's source) whose events go here
    url              checked by url_policy at creation (and at every attempt)
    events           event types, or ["*"] for every type
    secret           "whsec_..." (signing.py); kept as is, because signing needs it: never
                     returned after creation, never logged (docs/security.md)
    state            active | disabled
    disabled_reason, disabled_at   why and when it stopped (revoked, or a 410 from the receiver)
    created_at, created_by

An endpoint is never edited: a new URL or event list is a new endpoint (and a new secret),
the old one is revoked. Deliveries check the state at every attempt, so a revocation or a
410 stops retries at once. The stored side: storage/webhooks.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import msgspec

from mailbox_service.errors import InvalidMetadata
from mailbox_service.senders.events import EVENT_TYPES
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.webhooks import ALL_EVENTS

ENDPOINT_PREFIX = "whep_"
SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class WebhookEndpoint(msgspec.Struct, kw_only=True):
    """An endpoint as operators see it; the secret is shown once, at creation."""

    id: str
    source: str
    url: str
    events: list[str]
    state: str
    """`active` or `disabled`."""
    disabled_reason: str | None = None
    disabled_at: dt.datetime | None = None
    created_at: dt.datetime
    created_by: str


class CreatedEndpoint(WebhookEndpoint, kw_only=True):
    secret: str
    """`whsec_...`: the signing secret. Shown only now; store it in the receiver."""


def to_endpoint(stored: Doc) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=stored["_id"],
        source=stored["source"],
        url=stored["url"],
        events=list(stored["events"]),
        state=stored["state"],
        disabled_reason=stored.get("disabled_reason"),
        disabled_at=stored.get("disabled_at"),
        created_at=stored["created_at"],
        created_by=stored["created_by"],
    )


def checked_events(events: Sequence[str]) -> list[str]:
    """The subscription as stored; InvalidMetadata naming `events` when it is not one."""
    wanted = [e.strip() for e in events if e.strip()]
    if not wanted:
        raise InvalidMetadata(
            f"events: name at least one event type, or {ALL_EVENTS!r} for all", field="events"
        )
    if ALL_EVENTS in wanted:
        if len(wanted) > 1:
            raise InvalidMetadata(f"events: {ALL_EVENTS!r} stands alone", field="events")
        return [ALL_EVENTS]
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown:
        raise InvalidMetadata(
            f"events: unknown event type {unknown[0][:64]!r}; known: {', '.join(EVENT_TYPES)}",
            field="events",
        )
    return sorted(set(wanted))


def checked_source(source: str) -> str:
    if re.fullmatch(SOURCE_PATTERN, source) is None:
        raise InvalidMetadata(
            "source: 1-64 characters, letters, digits and . _ : - (the API key's source)",
            field="source",
        )
    return source
