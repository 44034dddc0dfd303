"""The outbox's indexes: defined here only. Migration 0003 creates them, and the worker that
runs the sweep ensures them at start-up (for a worker started before `migrate`)."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from mailbox_service.log import get_logger
from mailbox_service.storage.outbox.states import Channel, Doc, field

log = get_logger(__name__)


def status_index(channel: Channel) -> list[tuple[str, int]]:
    """The keys of a channel's status index: the sweep, the admin list and the backlog gauges
    look documents up by one channel's status (the gauges name it as their hint)."""
    return [(field(channel, "status"), ASCENDING)]


OUTBOX_INDEXES = [
    IndexModel(status_index("email"), name="notify_email_status"),
    IndexModel(status_index("realtime"), name="notify_realtime_status"),
    # Stats count per day of creation.
    IndexModel([("created_at", ASCENDING)], name="created_at"),
]


def ensure_indexes(documents: Collection[Doc]) -> None:
    """Create the outbox indexes if missing; an equivalent index under another name is fine."""
    for index in OUTBOX_INDEXES:
        try:
            documents.create_indexes([index])
        except PyMongoError as exc:
            log.info("outbox.index_skipped", index=index.document["name"], error=str(exc)[:200])
