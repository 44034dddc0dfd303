"""Standard Webhooks (https://www.standardwebhooks.com): secrets, signatures and payloads.

A secret is `whsec_` + base64 of 32 random bytes; the HMAC key is the decoded bytes. Each
attempt is signed over `"{webhook-id}.{webhook-timestamp}.{body}"` with HMAC-SHA256, sent as
`webhook-signature: v1,<base64 digest>`. The body is fixed when the delivery is created, so a
retry or a resend carries the same bytes and the same `webhook-id`; only the timestamp (and so
the signature) is new, which lets a receiver refuse replays of old attempts.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

import msgspec

from mailbox_service.senders.events import event_id

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, body: bytes, at: dt.datetime) -> dict[str, str]:
    """The headers of one attempt made at `at`."""
    timestamp = int(at.timestamp())
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(event: Mapping[str, Any]) -> bytes:
    """The body for a stored sender event: `{"type", "timestamp", "data"}` as the convention
    has it, plus our event id; `data` holds the document's identifiers and the event's facts."""
    data: dict[str, Any] = dict(event.get("data") or {})
    data.update(
        document_id=event["document_id"],
        source_ref=event["source_ref"],
        document_type=event["document_type"],
    )
    body = {
        "id": event_id(event["_id"]),
        "type": event["type"],
        "timestamp": _iso(event["occurred_at"]),
        "data": data,
    }
    return msgspec.json.encode(body)


def test_payload(endpoint_id: str, at: dt.datetime) -> bytes:
    """The body of `webhooks test`: a `webhook.test` event that names the endpoint."""
    return msgspec.json.encode(
        {"type": "webhook.test", "timestamp": _iso(at), "data": {"endpoint_id": endpoint_id}}
    )
