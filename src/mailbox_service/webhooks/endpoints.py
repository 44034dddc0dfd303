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
410 stops retries at once.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence

import anyio.to_thread
import msgspec
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.collection import Collection

from mailbox_service.clock import utcnow
from mailbox_service.errors import InvalidMetadata, NotFound
from mailbox_service.senders.events import EVENT_TYPES
from mailbox_service.storage.mongo import Doc
from mailbox_service.webhooks.signing import new_secret
from mailbox_service.webhooks.url_policy import check_for_endpoint

ENDPOINT_PREFIX = "whep_"
ALL_EVENTS = "*"
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


def subscribed(source: str, event_type: str) -> Doc:
    """Filter: the source's active endpoints that take events of this type."""
    return {"source": source, "state": "active", "events": {"$in": [event_type, ALL_EVENTS]}}


def disabling(reason: str, now: dt.datetime) -> Doc:
    return {"$set": {"state": "disabled", "disabled_reason": reason, "disabled_at": now}}


class EndpointStore:
    """Async: the admin API and the CLI."""

    def __init__(self, endpoints: AsyncCollection[Doc]) -> None:
        self.endpoints = endpoints

    async def create(
        self, *, source: str, url: str, events: Sequence[str], by: str, allow_private: bool
    ) -> CreatedEndpoint:
        source = checked_source(source)
        subscription = checked_events(events)
        await anyio.to_thread.run_sync(lambda: check_for_endpoint(url, allow_private=allow_private))
        stored: Doc = {
            "_id": ENDPOINT_PREFIX + secrets.token_hex(8),
            "source": source,
            "url": url,
            "events": subscription,
            "secret": new_secret(),
            "state": "active",
            "disabled_reason": None,
            "disabled_at": None,
            "created_at": utcnow(),
            "created_by": by,
        }
        await self.endpoints.insert_one(stored)
        endpoint = to_endpoint(stored)
        return CreatedEndpoint(**msgspec.structs.asdict(endpoint), secret=stored["secret"])

    async def all(self, source: str | None = None) -> list[WebhookEndpoint]:
        query: Doc = {} if source is None else {"source": source}
        found = await self.endpoints.find(query, {"secret": 0}).sort("_id", 1).to_list()
        return [to_endpoint(doc) for doc in found]

    async def get_stored(self, endpoint_id: str) -> Doc:
        """With its secret (for `test`); NotFound when there is no such endpoint."""
        found = await self.endpoints.find_one({"_id": endpoint_id})
        if found is None:
            raise NotFound(f"no webhook endpoint {endpoint_id[:64]!r}", field="endpoint_id")
        return found

    async def revoke(self, endpoint_id: str, by: str) -> WebhookEndpoint:
        """Disable for good; revoking a disabled endpoint keeps its first reason."""
        changed = await self.endpoints.find_one_and_update(
            {"_id": endpoint_id, "state": "active"},
            disabling(f"revoked by {by}", utcnow()),
            projection={"secret": 0},
            return_document=ReturnDocument.AFTER,
        )
        if changed is None:
            stored = await self.get_stored(endpoint_id)
            return to_endpoint(stored)
        return to_endpoint(changed)


class BlockingEndpoints:
    """Sync: the worker's webhook threads."""

    def __init__(self, endpoints: Collection[Doc]) -> None:
        self.endpoints = endpoints

    def subscribed(self, source: str, event_type: str) -> list[Doc]:
        """Whole endpoints (with url and secret): the dispatch attempts the first itself."""
        return list(self.endpoints.find(subscribed(source, event_type)))

    def get(self, endpoint_id: str) -> Doc | None:
        found: Doc | None = self.endpoints.find_one({"_id": endpoint_id})
        return found

    def disable(self, endpoint_id: str, reason: str) -> bool:
        """True when this call disabled it (it was active)."""
        result = self.endpoints.update_one(
            {"_id": endpoint_id, "state": "active"}, disabling(reason, utcnow())
        )
        return result.modified_count == 1
