"""What an evidence bundle says about one document, built from what is stored on it.

The bundle is a plain dict of JSON types and datetimes; `canonical.canonical_json` turns it
into the signed bytes. Its shape is versioned by `format`: a field is never renamed or given a
new meaning under the same format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from mailbox_service.storage.holds import Hold
from mailbox_service.storage.mongo import Doc

FORMAT: Final = "mailbox-evidence/1"

NO_KEY_ID_API: Final = (
    "not recorded: the document was ingested before the service kept the sending key's id"
)
NO_KEY_ID_BACKFILL: Final = "none: imported by an operator with `mailbox-service backfill`"

# Per channel, the outbox fields that say what happened (not the worker's lease bookkeeping).
_OUTCOME_FIELDS: Final = (
    "status",
    "attempts",
    "at",
    "sent_at",
    "message_id",
    "relay_reply",
    "error",
    "reason",
    "resent_at",
)


def _outcome(state: Doc) -> dict[str, Any]:
    outcome = {name: state.get(name) for name in _OUTCOME_FIELDS}
    outcome["attempts"] = int(state.get("attempts") or 0)
    return outcome


def _ingest_key(document: Doc) -> dict[str, Any]:
    key_id = document.get("ingest_key_id")
    if key_id:
        return {"key_id": key_id, "note": None}
    note = NO_KEY_ID_BACKFILL if document.get("origin") == "backfill" else NO_KEY_ID_API
    return {"key_id": None, "note": note}


def _delivery(document: Doc) -> dict[str, Any]:
    delivery = document.get("delivery") or {}
    email = delivery.get("email")
    return {
        "mode": delivery.get("mode"),
        "reason": delivery.get("reason"),
        "locale": delivery.get("locale"),
        # The address itself is the customer's personal data, which the sender may never have
        # had (it can come from the account): a hash proves it to whoever knows the address.
        "email_sha256": hashlib.sha256(email.encode()).hexdigest() if email else None,
    }


def _hold(hold: Hold) -> dict[str, Any]:
    plain: dict[str, Any] = msgspec.structs.asdict(hold)
    return plain


def build_evidence(
    document: Doc, holds: Sequence[Hold], *, key_id: str, generated_at: dt.datetime
) -> dict[str, Any]:
    """The evidence of `document` as of `generated_at`, to be signed by the key `key_id`."""
    blob = document.get("blob") or {}
    notifications = document.get("notifications") or {}
    return {
        "format": FORMAT,
        "generated_at": generated_at,
        "key_id": key_id,
        "document": {
            "id": document["_id"],
            "type": document.get("type"),
            "account_id": document.get("account_id"),
            "source": document.get("source"),
            "source_ref": document.get("source_ref"),
            "origin": document.get("origin"),
            "issued_at": document.get("issued_at"),
            "retain_until": document.get("retain_until"),
        },
        "ingestion": {
            "at": document.get("created_at"),
            "api_key": _ingest_key(document),
        },
        "file": {
            "sha256": blob.get("sha256"),
            "size": blob.get("size"),
            "content_type": blob.get("content_type"),
        },
        "delivery": _delivery(document),
        "notifications": {
            channel: _outcome(state)
            for channel, state in sorted(notifications.items())
            if isinstance(state, dict)
        },
        "portal": {
            "first_read_at": document.get("first_read_at"),
            "first_downloaded_at": document.get("first_downloaded_at"),
        },
        "holds": [_hold(h) for h in holds],
    }
