"""MailboxService: what a portal user may see and change, always scoped to their accounts.

A document of another account is indistinguishable from one that does not exist (404).

Lists are newest first by (issued_at, _id) and paged by keyset: a page starts strictly after
the last item of the previous one (a `$nor` filter, `keyset_after`), so documents arriving
meanwhile neither repeat nor shift items, and on DocumentDB page 50 reads what page 1 reads.
Every query shape here is served by an index (migrations/0002_mailbox_indexes.py; lookups by
`_id`), and every request gets its answer in one batch (`one_batch`):
tests/integration/mailbox/test_mailbox_indexes.py runs these methods, explains what they sent and
checks that no cursor needed a getMore. `list_query` is public so the benchmark can send
exactly what the API sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from pymongo import DESCENDING, ReturnDocument

from mailbox_service.auth.tokens import PortalUser
from mailbox_service.clock import utcnow
from mailbox_service.cursors import CursorSigner, Position, filters_digest
from mailbox_service.errors import DependencyUnavailable, InvalidMetadata, NotFound
from mailbox_service.log import get_logger
from mailbox_service.mailbox import access
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.mailbox.schemas import (
    ITEM_PROJECTION,
    DocumentPage,
    Preferences,
    PreferencesUpdate,
    UnreadCount,
    item_from,
)
from mailbox_service.realtime.emitter import RealtimeEmitter
from mailbox_service.senders.email_outcomes import time_text
from mailbox_service.senders.event_log import EventLog
from mailbox_service.storage.accounts import Account, AccountStore
from mailbox_service.storage.documents import DocumentStore, one_batch
from mailbox_service.storage.mongo import Doc
from mailbox_service.types import error_field

log = get_logger(__name__)

SORT: list[tuple[str, int]] = [("issued_at", DESCENDING), ("_id", DESCENDING)]
UNREAD_ROWS_BATCH = 10_000
"""First batch of the unread count: one row per (account, type) with unread documents, so the
answer comes in one reply (the default, 101 rows, is 34 accounts of three types)."""
MAX_ID_LENGTH = 64


class InvalidPreferences(InvalidMetadata):
    """A preferences body failed validation (422); `field` names the offending field."""


def account_match(accounts: Sequence[str]) -> Any:
    # A plain equality for one account, the common case; `$in` for several. Both bound the
    # index scan on MongoDB and on DocumentDB (tests/integration/mailbox/test_mailbox_indexes.py).
    return accounts[0] if len(accounts) == 1 else {"$in": list(accounts)}


def list_query(accounts: Sequence[str], filters: ListFilters, after: Position | None) -> Doc:
    """The MongoDB filter of one list page (sorted by SORT)."""
    query: Doc = {
        "account_id": account_match(accounts),
        "archived_at": {"$ne": None} if filters.archived else None,
    }
    if filters.type is not None:
        query["type"] = filters.type
    if filters.unread is not None:
        query["read_at"] = None if filters.unread else {"$ne": None}
    issued: Doc = {}
    if filters.issued_from is not None:
        issued["$gte"] = filters.issued_from
    if filters.issued_to is not None:
        issued["$lt"] = filters.issued_to
    if after is not None:
        query["$nor"] = keyset_after(after)
    if issued:
        query["issued_at"] = issued
    return query


def keyset_after(after: Position) -> list[Doc]:
    """`$nor` operands: the items strictly after `after` in (issued_at, _id) descending order.

    Not (issued later, or issued at the same millisecond with an `_id` not below the cursor's).
    A negation, on purpose: it is a filter, never an index bound. On DocumentDB any `issued_at`
    range in the index condition (`$lte`, `$lt`, `$not: {$gt}`, or `$or` branches with them)
    makes the composite index scan walk every entry of the whole collection in that range, not
    only the account's, and spill it to a temp sort: page 21 cost 2-3x page 1 at 100,000
    documents and 30x at 1,000,000. With only the equalities in the index condition, it reads
    the account's inbox and filters it, exactly what the first page reads (docs/api.md,
    Indexes). On MongoDB the index walk stays in sort order and the filter runs on the index
    keys; it steps over the earlier pages' keys instead of seeking past them.
    """
    return [
        {"issued_at": {"$gt": after.issued_at}},
        {"issued_at": after.issued_at, "_id": {"$gte": after.id}},
    ]


def unread_pipeline(accounts: Sequence[str]) -> list[Doc]:
    return [
        {"$match": {"account_id": account_match(accounts), "archived_at": None, "read_at": None}},
        {"$group": {"_id": {"account": "$account_id", "type": "$type"}, "n": {"$sum": 1}}},
    ]


def preferences_from(account: Account) -> Preferences:
    return Preferences(
        account_id=account.account_id,
        paperless=account.paperless,
        email=account.email,
        locale=account.locale,
        paperless_changed_at=account.paperless_changed_at,
        updated_at=account.updated_at,
    )


_FRIENDLY_FORMAT = {"email": "not a valid email address", "locale": "expected e.g. de or en-GB"}


def decode_preferences(body: Any) -> PreferencesUpdate:
    """Validate a PUT body; a wrong field is a 422 naming it."""
    if not isinstance(body, dict):
        raise InvalidPreferences("body: expected a JSON object", field="body")
    try:
        return msgspec.convert(body, PreferencesUpdate, strict=True)
    except msgspec.ValidationError as exc:
        field, message = error_field(exc)
        if "matching regex" in message:
            # The pattern itself means nothing to a customer.
            message = _FRIENDLY_FORMAT.get(field, "has an invalid format")
        raise InvalidPreferences(f"{field or 'body'}: {message}", field=field or "body") from None


class MailboxService:
    def __init__(
        self,
        documents: DocumentStore,
        accounts: AccountStore,
        cursors: CursorSigner,
        realtime: RealtimeEmitter,
        sender_events: EventLog | None = None,
    ) -> None:
        self._docs = documents.collection
        self._accounts = accounts
        self._cursors = cursors
        self._realtime = realtime
        self._sender_events = sender_events
        """Read and download receipts for senders; None only where a test needs no events."""

    # --- reading -------------------------------------------------------------------------

    async def page(
        self, user: PortalUser, filters: ListFilters, *, limit: int, cursor: str | None
    ) -> DocumentPage:
        digest = filters_digest(filters.canonical())
        # Checked before anything else: a forged cursor is a 400 whatever the filters are.
        after = self._cursors.decode(cursor, digest) if cursor else None
        if filters.account is not None:
            visible = access.may_view(user, filters.account)
            accounts: Sequence[str] = [filters.account] if visible else []
        else:
            accounts = user.accounts
        if not accounts:
            return DocumentPage(items=[], next_cursor=None)
        found = self._docs.find(list_query(accounts, filters, after), ITEM_PROJECTION)
        docs = await one_batch(found.sort(SORT), limit + 1).to_list()
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            last = docs[-1]
            next_cursor = self._cursors.encode(Position(last["issued_at"], last["_id"]), digest)
        return DocumentPage(items=[item_from(doc) for doc in docs], next_cursor=next_cursor)

    async def get(self, user: PortalUser, document_id: str) -> Doc:
        doc: Doc | None = None
        if (user.accounts or user.support) and len(document_id) <= MAX_ID_LENGTH:
            # Support reads any account's document; every other caller only their own.
            scope = {"_id": document_id} if user.support else self._scope(user, document_id)
            doc = await self._docs.find_one(scope)
        if doc is None:
            raise NotFound("no such document")
        return doc

    async def unread_count(self, user: PortalUser) -> UnreadCount:
        by_account = dict.fromkeys(user.accounts, 0)
        by_type: dict[str, int] = {}
        if user.accounts:
            rows = await self._docs.aggregate(
                unread_pipeline(user.accounts), batchSize=UNREAD_ROWS_BATCH
            )
            async for row in rows:
                account, doctype, n = row["_id"]["account"], row["_id"]["type"], int(row["n"])
                by_account[account] = by_account.get(account, 0) + n
                by_type[doctype] = by_type.get(doctype, 0) + n
        return UnreadCount(
            total=sum(by_account.values()),
            by_account=by_account,
            by_type=dict(sorted(by_type.items())),
        )

    # --- changing ------------------------------------------------------------------------

    async def mark_read(self, user: PortalUser, document_id: str, read: bool) -> Doc:
        """Set or clear `read_at`. The first read is kept in `first_read_at` for the record,
        and only the first read tells the sender (`document.read`): reading again after "mark
        unread" does not."""
        now = utcnow()
        if read:
            doc, changed = await self._transition(
                user,
                document_id,
                when={"read_at": None},
                update={"$set": {"read_at": now}, "$min": {"first_read_at": now}},
            )
            # `$min` kept an earlier first read; only the call that set it sees `now` there.
            if changed and doc.get("first_read_at") == now:
                await self._tell_sender(doc, "document.read", now)
            return doc
        doc, _ = await self._transition(
            user, document_id, when={"read_at": {"$ne": None}}, update={"$set": {"read_at": None}}
        )
        return doc

    async def mark_archived(self, user: PortalUser, document_id: str, archived: bool) -> Doc:
        if archived:
            doc, _ = await self._transition(
                user,
                document_id,
                when={"archived_at": None},
                update={"$set": {"archived_at": utcnow()}},
            )
            return doc
        doc, _ = await self._transition(
            user,
            document_id,
            when={"archived_at": {"$ne": None}},
            update={"$set": {"archived_at": None}},
        )
        return doc

    async def record_download(self, user: PortalUser, doc: Doc) -> None:
        """Remember the customer's first download (later ones leave the time alone) and tell
        the sender once. A support agent looking at another account's file is not the
        customer downloading it: nothing is recorded then."""
        if doc["account_id"] not in user.accounts:
            return
        now = utcnow()
        done = await self._docs.update_one(
            {"_id": doc["_id"], "first_downloaded_at": None},
            {"$set": {"first_downloaded_at": now}},
        )
        if done.modified_count:
            await self._tell_sender(doc, "document.downloaded", now)

    # --- preferences -----------------------------------------------------------------------

    async def preferences(self, user: PortalUser, account_id: str) -> Preferences:
        access.require_preferences_access(user, account_id)
        account = await self._accounts.get(account_id) or Account(account_id=account_id)
        return preferences_from(account)

    async def update_preferences(
        self, user: PortalUser, account_id: str, update: PreferencesUpdate
    ) -> Preferences:
        access.require_preferences_access(user, account_id)
        access.require_owner(user, account_id)
        changes: dict[str, Any] = {
            name: value
            for name in ("email", "locale")
            if (value := getattr(update, name)) is not msgspec.UNSET
        }
        paperless = None if update.paperless is msgspec.UNSET else update.paperless
        account = await self._accounts.update(
            account_id, by=user.sub, paperless=paperless, **changes
        )
        return preferences_from(account)

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _scope(user: PortalUser, document_id: str) -> Doc:
        return {"_id": document_id, "account_id": account_match(user.accounts)}

    async def _tell_sender(
        self, doc: Doc, event: Literal["document.read", "document.downloaded"], at: dt.datetime
    ) -> None:
        # When, never who: the event carries no user.
        if self._sender_events is not None:
            await self._sender_events.record(doc, event, {"at": time_text(at)})

    async def _transition(
        self, user: PortalUser, document_id: str, when: Doc, update: Doc
    ) -> tuple[Doc, bool]:
        """Apply `update` if the document is in state `when`; announce only real changes.
        The document as it is now, and whether this call changed it."""
        if len(document_id) > MAX_ID_LENGTH:
            raise NotFound("no such document")
        doc = None
        if user.accounts:
            doc = await self._docs.find_one_and_update(
                {**self._scope(user, document_id), **when},
                update,
                return_document=ReturnDocument.AFTER,
            )
        if doc is None:
            current = await self.get(user, document_id)  # 404, or already in that state
            access.require_own_account(user, current["account_id"])  # support reads only
            return current, False
        try:
            await self._realtime.emit_updated(doc)
        except DependencyUnavailable as exc:
            # The change is stored; clients catch up when they next load the list.
            log.warning("realtime.emit_failed", document_id=doc["_id"], error=str(exc))
        return doc, True
