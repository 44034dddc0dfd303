"""The change feed: every event of a source's documents after a cursor, oldest first.

`GET /v1/documents/changes?since=CURSOR&limit=N` is the pull side of a sender's periodic sync:
it pages through `sender_events` by `_id` with the index `sender_events_feed` (source, _id),
through storage/sender_events.py.

Only events older than `events.SETTLE` are served: ObjectIds from several processes are not
in time order within one second, so an event written a moment ago could still be overtaken by
one with a smaller id; once its second has settled, nothing can land behind the cursor.

The cursor is opaque to senders: 24 hex digits, the `_id` position the next page starts after.
An event id (`evt_…`, from a webhook or an item) is accepted too and means "after this event".
`next` is always returned: after a full page it is the last item's position; after a short
(or empty) page it is the settle bound, since every settled event up to there was returned,
which keeps the next poll's index scan short even for a source with no new events.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import msgspec
from bson import ObjectId

from mailbox_service.clock import utcnow
from mailbox_service.errors import BadRequest
from mailbox_service.senders.events import SETTLE, SenderEvent, object_id_of, to_event
from mailbox_service.storage.sender_events import SenderEventStore

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CURSOR_PATTERN = r"^(evt_)?[0-9a-f]{24}$"
_CURSOR = re.compile(CURSOR_PATTERN)


class ChangePage(msgspec.Struct, frozen=True):
    """One page of the change feed."""

    items: list[SenderEvent]
    next: Annotated[
        str,
        msgspec.Meta(
            description="Pass it as `since` next time; returned even for an empty page, so "
            "keep it and poll from there."
        ),
    ]


def parse_cursor(since: str | None) -> ObjectId | None:
    """The position after which to read; None: from the beginning. 400 naming `since`."""
    if since is None or since == "":
        return None
    position = object_id_of(since) if _CURSOR.match(since) else None
    if position is None:
        raise BadRequest(
            "since: not a cursor of this feed (use `next` of the previous page, or an event id)",
            field="since",
        )
    return position


def settle_bound(now: dt.datetime) -> ObjectId:
    """The smallest id of the second that is still settling: events below it are final."""
    return ObjectId.from_datetime(now - SETTLE)


class ChangeFeed:
    def __init__(self, events: SenderEventStore) -> None:
        self.events = events

    async def page(
        self, source: str, since: str | None, limit: int, *, now: dt.datetime | None = None
    ) -> ChangePage:
        after = parse_cursor(since)
        bound = settle_bound(now or utcnow())
        if after is not None and after >= bound:
            # A cursor from the future of the settle bound (a fresh webhook's event id):
            # nothing after it has settled yet.
            return ChangePage(items=[], next=str(after))
        stored = await self.events.feed_page(source, after, bound, limit)
        # A short page returned every settled event: the next poll may start at the bound.
        next_position = stored[-1]["_id"] if len(stored) == limit else bound
        return ChangePage(items=[to_event(event) for event in stored], next=str(next_position))
