"""Reading the audit trail: filters, newest first, keyset pages with signed cursors.

Every filter shape has an index (migrations/0007_audit.py): one per filter field followed by
the sort keys (at, _id), and (at, _id) alone for no filter. A query with several filters is
served by one of their indexes (the planner's choice) and the rest are checked on the rows it
reads. The cursor is the portal's (`cursors.py`): an
HMAC-signed (at, _id) bound to a digest of the filters, and the next page starts after it with
the same `$nor` form. Without an equality filter the list is read one UTC day at a time
(`_read_by_day`), so a page never costs a sort of the whole trail on DocumentDB.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import msgspec

from mailbox_service.audit.entry import ACTIONS
from mailbox_service.audit.schemas import AuditActor, AuditItem, AuditPage
from mailbox_service.clock import parse_time
from mailbox_service.cursors import CursorSigner, Position, filters_digest
from mailbox_service.errors import BadRequest
from mailbox_service.storage.audit_log import AuditLogStore
from mailbox_service.storage.mongo import Doc

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_VALUE_LENGTH = 256
MAX_DAYS = 100_000
"""Day heads read at once by an unfiltered list: one small document per day, in one batch."""
FILTER_VALUE = re.compile(r"[\x21-\x7e]+")
"""What account ids, document ids, key ids and token subjects are made of (checked after the
length, so the match is bounded); the contract publishes the same pattern."""


@dataclass(frozen=True)
class AuditFilters:
    account_id: str | None = None
    document_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        account_id: str | None = None,
        document_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: str | None = None,
    ) -> AuditFilters:
        """Checked filters; a bad one is a 400 naming its parameter."""
        for name, value in (
            ("account_id", account_id),
            ("document_id", document_id),
            ("actor", actor),
        ):
            if value is not None and not (
                0 < len(value) <= MAX_VALUE_LENGTH and FILTER_VALUE.fullmatch(value)
            ):
                raise BadRequest(
                    f"{name}: must be 1-{MAX_VALUE_LENGTH} printable ASCII characters, no spaces",
                    field=name,
                )
        if action is not None and action not in ACTIONS:
            raise BadRequest(
                f"action: unknown action {action[:64]!r}; known: {', '.join(ACTIONS)}",
                field="action",
            )
        return cls(account_id, document_id, actor, action, parse_time(since, "since"))

    @property
    def narrowed(self) -> bool:
        """An equality filter bounds the query through its index (`since` alone does not)."""
        return any(
            v is not None for v in (self.account_id, self.document_id, self.actor, self.action)
        )

    def query(self) -> Doc:
        query: Doc = {}
        for name, value in (
            ("account_id", self.account_id),
            ("document_id", self.document_id),
            ("actor_id", self.actor),
            ("action", self.action),
        ):
            if value is not None:
                query[name] = value
        if self.since is not None:
            query["at"] = {"$gte": self.since}
        return query

    def digest(self) -> str:
        since = self.since.isoformat() if self.since else None
        canonical = [self.account_id, self.document_id, self.actor, self.action, since]
        return filters_digest(b"audit\x00" + msgspec.json.encode(canonical))


def item_from(doc: Doc) -> AuditItem:
    return AuditItem(
        id=doc["_id"],
        at=doc["at"],
        action=doc["action"],
        actor=msgspec.convert(doc["actor"], AuditActor),
        account_id=doc.get("account_id"),
        document_id=doc.get("document_id"),
        client=doc.get("client"),
        request_id=doc.get("request_id"),
        details=doc.get("details"),
        day=doc["day"],
        seq=doc["seq"],
        prev_hash=doc["prev_hash"],
        hash=doc["hash"],
    )


class AuditQuery:
    def __init__(self, log: AuditLogStore, cursors: CursorSigner) -> None:
        self._log = log
        self._cursors = cursors

    async def page(self, filters: AuditFilters, *, limit: int, cursor: str | None) -> AuditPage:
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}", field="limit")
        digest = filters.digest()
        query = filters.query()
        after = self._cursors.decode(cursor, digest) if cursor else None
        if after is not None:
            query["$nor"] = [
                {"at": {"$gt": after.sort_time}},
                {"at": after.sort_time, "_id": {"$gte": after.id}},
            ]
        if filters.narrowed:
            docs = await self._log.newest(query, limit + 1)
        else:
            docs = await self._read_by_day(query, filters.since, after, limit + 1)
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = self._cursors.encode(Position(docs[-1]["at"], docs[-1]["_id"]), digest)
        return AuditPage(items=[item_from(doc) for doc in docs], next_cursor=next_cursor)

    async def _read_by_day(
        self, query: Doc, since: dt.datetime | None, after: Position | None, n: int
    ) -> list[Doc]:
        """Newest first without an equality filter, one UTC day at a time.

        DocumentDB sorts whatever it reads: with nothing to narrow by, one query would read the
        whole trail to return a page (363 ms at 100,000 entries, growing with the trail).
        Bounded by one day's `at` range per query, a page costs what the days it spans hold.
        The days are those with a chain head (every day with entries has one), newest first,
        from the cursor's day back to `since`.
        """
        high = after.sort_time.astimezone(dt.UTC).date().isoformat() if after is not None else None
        low_day = since.astimezone(dt.UTC).date().isoformat() if since is not None else None
        docs: list[Doc] = []
        for day in await self._log.days_newest_first(low_day, high, MAX_DAYS):
            start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)
            low = max(start, since) if since is not None else start
            window = {"$gte": low, "$lt": start + dt.timedelta(days=1)}
            docs.extend(await self._log.newest({**query, "at": window}, n - len(docs)))
            if len(docs) >= n:
                break
        return docs
