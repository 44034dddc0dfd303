"""MailboxService: what a portal user may see and change, always scoped to their accounts.

A document of another account is indistinguishable from one that does not exist (404).

Lists are newest first by (issued_at, _id) and paged by keyset (storage/inbox.py has the
queries). Every query shape here is served by an index (migrations/0002_mailbox_indexes.py;
lookups by `_id`), and every request gets its answer in one batch (`one_batch`):
tests/integration/mailbox/test_mailbox_indexes.py runs these methods, explains what they sent and
checks that no cursor needed a getMore.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import msgspec

from mailbox_service.auth.tokens import PortalUser
from mailbox_service.clock import utcnow
from mailbox_service.cursors import CursorSigner, Position, filters_digest
from mailbox_service.errors import DependencyUnavailable, InvalidMetadata, NotFound
from mailbox_service.log import get_logger
from mailbox_service.mailbox import access
from mailbox_service.mailbox.filters import ListFilters
from mailbox_service.mailbox.schemas import (
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
from mailbox_service.storage.documents import DocumentStore
from mailbox_service.storage.stored_document import StoredDocument
from mailbox_service.types import error_field

log = get_logger(__name__)

MAX_ID_LENGTH = 64


class InvalidPreferences(InvalidMetadata):
    """A preferences body failed validation (422); `field` names the offending field."""


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
        self._docs = documents
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
        docs = await self._docs.page(accounts, filters, after, limit + 1)
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            last = docs[-1]
            next_cursor = self._cursors.encode(Position(last.issued_at, last.id), digest)
        return DocumentPage(items=[item_from(doc) for doc in docs], next_cursor=next_cursor)

    async def get(self, user: PortalUser, document_id: str) -> StoredDocument:
        doc: StoredDocument | None = None
        if (user.accounts or user.support) and len(document_id) <= MAX_ID_LENGTH:
            # Support reads any account's document; every other caller only their own.
            if user.support:
                doc = await self._docs.get(document_id)
            else:
                doc = await self._docs.get_for_accounts(document_id, user.accounts)
        if doc is None:
            raise NotFound("no such document")
        return doc

    async def unread_count(self, user: PortalUser) -> UnreadCount:
        by_account = dict.fromkeys(user.accounts, 0)
        by_type: dict[str, int] = {}
        if user.accounts:
            for account, doctype, n in await self._docs.unread_counts(user.accounts):
                by_account[account] = by_account.get(account, 0) + n
                by_type[doctype] = by_type.get(doctype, 0) + n
        return UnreadCount(
            total=sum(by_account.values()),
            by_account=by_account,
            by_type=dict(sorted(by_type.items())),
        )

    # --- changing ------------------------------------------------------------------------

    async def mark_read(self, user: PortalUser, document_id: str, read: bool) -> StoredDocument:
        """Set or clear `read_at`. The first read is kept in `first_read_at` for the record,
        and only the first read tells the sender (`document.read`): reading again after "mark
        unread" does not."""
        now = utcnow()
        doc, changed = await self._transition(
            user,
            document_id,
            lambda accounts: self._docs.set_read(document_id, accounts, read=read, at=now),
        )
        # The first read is kept when it is earlier; only the call that set it sees `now`.
        if read and changed and doc.first_read_at == now:
            await self._tell_sender(doc, "document.read", now)
        return doc

    async def mark_archived(
        self, user: PortalUser, document_id: str, archived: bool
    ) -> StoredDocument:
        now = utcnow()
        doc, _ = await self._transition(
            user,
            document_id,
            lambda accounts: self._docs.set_archived(
                document_id, accounts, archived=archived, at=now
            ),
        )
        return doc

    async def record_download(self, user: PortalUser, doc: StoredDocument) -> None:
        """Remember the customer's first download (later ones leave the time alone) and tell
        the sender once. A support agent looking at another account's file is not the
        customer downloading it: nothing is recorded then."""
        if doc.account_id not in user.accounts:
            return
        now = utcnow()
        if await self._docs.record_first_download(doc.id, now):
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

    async def _tell_sender(
        self,
        doc: StoredDocument,
        event: Literal["document.read", "document.downloaded"],
        at: dt.datetime,
    ) -> None:
        # When, never who: the event carries no user.
        if self._sender_events is not None:
            await self._sender_events.record(doc.event_subject(), event, {"at": time_text(at)})

    async def _transition(
        self,
        user: PortalUser,
        document_id: str,
        change: Callable[[Sequence[str]], Awaitable[StoredDocument | None]],
    ) -> tuple[StoredDocument, bool]:
        """Apply `change` (a compare-and-set on the user's accounts); announce only real
        changes. The document as it is now, and whether this call changed it."""
        if len(document_id) > MAX_ID_LENGTH:
            raise NotFound("no such document")
        doc = await change(user.accounts) if user.accounts else None
        if doc is None:
            current = await self.get(user, document_id)  # 404, or already in that state
            access.require_own_account(user, current.account_id)  # support reads only
            return current, False
        try:
            await self._realtime.emit_updated(doc)
        except DependencyUnavailable as exc:
            # The change is stored; clients catch up when they next load the list.
            log.warning("realtime.emit_failed", document_id=doc.id, error=str(exc))
        return doc, True
