"""What one audit entry holds, who its actor is, and the canonical bytes its hash covers.

An entry, as stored in `audit`:

    _id         "<day>:<seq, 12 digits>"  (unique, sorts in chain order within a day)
    day, seq    the UTC day of `at` and the entry's place in that day's chain (1, 2, ...)
    at          when the action happened (UTC, milliseconds)
    action      one of ACTIONS
    actor       {"kind": "portal", "sub", "role"?} | {"kind": "key", "key_id", "source"}
                | {"kind": "operator"} | {"kind": "anonymous"}
    actor_id    the sub, key id, "operator" or "anonymous" (what `?actor=` matches)
    account_id, document_id, client, request_id, details   (each may be null)
    prev_hash   `hash` of the entry before it in the day's chain (GENESIS for seq 1)
    hash        SHA-256 (hex) of `canonical(entry)`, which includes prev_hash
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Final, Literal, Protocol, get_args

import msgspec

from mailbox_service.storage.mongo import Doc

AuditAction = Literal[
    "mailbox.listed",
    "document.read",
    "document.downloaded",
    "document.archived",
    "preferences.changed",
    "key.created",
    "key.revoked",
    "notification.resent",
    "auth.failed",
    "rate.limited",
    "account.erased",
    "backup.restored",
    "evidence.issued",
    "retention.purged",
    "hold.set",
    "hold.released",
    "bounce.reported",
    "acknowledgement.printed",
    "reminders.sent",
    "webhook.created",
    "webhook.revoked",
    "webhook.tested",
    "webhook.resent",
    "document.status_changed",
]
ACTIONS: Final[tuple[str, ...]] = get_args(AuditAction)
GENESIS: Final = "0" * 64
"""`prev_hash` of the first entry of a day."""
MAX_DETAILS_BYTES: Final = 8 * 1024
HASHED_FIELDS: Final = (
    "day",
    "seq",
    "at",
    "action",
    "actor",
    "account_id",
    "document_id",
    "client",
    "request_id",
    "details",
    "prev_hash",
)

Actor = dict[str, str]
OPERATOR: Final[Actor] = {"kind": "operator"}
ANONYMOUS: Final[Actor] = {"kind": "anonymous"}


class PortalCaller(Protocol):
    @property
    def sub(self) -> str: ...

    @property
    def role(self) -> str | None: ...

    def role_on(self, account_id: str) -> str | None: ...


class _Key(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def source(self) -> str: ...


def portal_actor(user: PortalCaller, account_id: str | None = None) -> Actor:
    """A portal caller, with the role it acts in: on `account_id` when the action is about one
    account (`reader`, `owner`, or `support` reading a customer's mailbox), else the token-wide
    role (`support`) if any."""
    actor = {"kind": "portal", "sub": user.sub}
    role = user.role_on(account_id) if account_id is not None else user.role
    if role:
        actor["role"] = role
    return actor


def key_actor(key: _Key) -> Actor:
    return {"kind": "key", "key_id": key.key_id, "source": key.source}


def actor_id(actor: Actor) -> str:
    return actor.get("sub") or actor.get("key_id") or actor["kind"]


def day_of(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d")


def entry_id(day: str, seq: int) -> str:
    return f"{day}:{seq:012d}"


def plain_details(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """Details as JSON types only, so the hash of what we stored equals the hash we wrote
    (a datetime would come back from MongoDB with fewer digits). Oversized details are
    replaced by a marker rather than refused: the entry itself must not be lost."""
    if details is None:
        return None
    raw = msgspec.json.encode(details)
    if len(raw) > MAX_DETAILS_BYTES:
        return {"truncated": True, "bytes": len(raw)}
    return msgspec.json.decode(raw)  # type: ignore[no-any-return]


def canonical(entry: Doc) -> bytes:
    body = {name: entry.get(name) for name in HASHED_FIELDS}
    at: dt.datetime = entry["at"]
    body["at"] = (
        at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    )
    return msgspec.json.encode(body, order="sorted")


def entry_hash(entry: Doc) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def link(day: str, entries: list[Doc], after_seq: int, after_hash: str) -> list[Doc]:
    """Copies of `entries` chained after (after_seq, after_hash): seq, prev_hash, hash, _id."""
    chained: list[Doc] = []
    prev = after_hash
    for offset, entry in enumerate(entries, start=1):
        seq = after_seq + offset
        doc = {**entry, "_id": entry_id(day, seq), "day": day, "seq": seq, "prev_hash": prev}
        doc["hash"] = prev = entry_hash(doc)
        chained.append(doc)
    return chained
