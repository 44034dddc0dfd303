"""Opaque, tamper-proof keyset cursors for "load more": the one codec of every keyset-paged list.

The portal's inbox, the audit trail and the operators' notification list page newest first on
(a time, an id); their cursors all come from here, signed with the same key. A cursor names
the last item a page ended with, (time, _id), and the filter set it was made for. It is
HMAC-signed: a client can neither forge a position nor carry a cursor over to other filters
or to another list (which would silently skip or repeat items); each list digests its filters
with a prefix of its own. A cursor that fails any check is a 400 naming `cursor`. Format, for
debugging only: `base64url(json [version, time_ms, id, filters_digest]) "." base64url(mac)`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import msgspec

from mailbox_service.errors import BadRequest
from mailbox_service.log import get_logger
from mailbox_service.settings import AuthSettings

log = get_logger(__name__)

VERSION = 1
MAC_BYTES = 16  # 128 bits: forging one is out of reach, and cursors stay short.
DIGEST_BYTES = 12
MAX_CURSOR_LENGTH = 512
_MAC_CONTEXT = b"mailbox-service/cursor/v1\x00"
_DERIVE_CONTEXT = b"mailbox-service cursor key"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


class InvalidCursor(BadRequest):
    """The `cursor` parameter is forged, damaged, or belongs to other filters."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cursor: {message}", field="cursor")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the next page starts strictly after this item.

    `sort_time` is the list's sort key: a document's issue date in the inbox, an entry's time
    in the audit trail, a document's creation in the notification list."""

    sort_time: dt.datetime
    id: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filters_digest(canonical_filters: bytes) -> str:
    """Short digest of the filter set a cursor is bound to."""
    return _b64encode(hashlib.sha256(canonical_filters).digest()[:DIGEST_BYTES])


class CursorSigner:
    """Encodes and checks cursors with one secret key."""

    def __init__(self, key: bytes, *, ephemeral: bool = False) -> None:
        if len(key) < 16:
            raise ValueError("cursor key must be at least 16 bytes")
        self._key = key
        self._warn = ephemeral

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> CursorSigner:
        """Key from `cursor_secret`, else derived from the HS256 secret, else random.

        A random key works for one process only (cursors break across restarts and nodes), so
        its first use is logged as a warning: production sets MAILBOX_AUTH_CURSOR_SECRET.
        """
        if settings.cursor_secret:
            return cls(hashlib.sha256(settings.cursor_secret.encode()).digest())
        if settings.jwt_secret:
            # Derived, not reused: a cursor MAC must never be usable as a token signature.
            derived = hmac.new(settings.jwt_secret.encode(), _DERIVE_CONTEXT, hashlib.sha256)
            return cls(derived.digest())
        return cls(secrets.token_bytes(32), ephemeral=True)

    def _mac(self, payload: str) -> str:
        mac = hmac.new(self._key, _MAC_CONTEXT + payload.encode("ascii"), hashlib.sha256)
        return _b64encode(mac.digest()[:MAC_BYTES])

    def encode(self, position: Position, digest: str) -> str:
        if self._warn:
            self._warn = False
            log.warning(
                "cursor.ephemeral_key",
                hint="set MAILBOX_AUTH_CURSOR_SECRET so cursors survive restarts and work on "
                "every node",
            )
        # Integer arithmetic: MongoDB keeps milliseconds, and a float could round one away.
        issued_ms = (position.sort_time - _EPOCH) // _MS
        payload = _b64encode(msgspec.json.encode([VERSION, issued_ms, position.id, digest]))
        return f"{payload}.{self._mac(payload)}"

    def decode(self, cursor: str, digest: str) -> Position:
        """The position in `cursor`; InvalidCursor unless it is ours and made for `digest`."""
        # ASCII first: the MAC is computed over ASCII bytes, and `é` would fail that encoding.
        if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii() or cursor.count(".") != 1:
            raise InvalidCursor("not a cursor issued by this service")
        payload, mac = cursor.split(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise InvalidCursor("not a cursor issued by this service")
        try:
            version, issued_ms, document_id, bound_to = msgspec.json.decode(_b64decode(payload))
        except (ValueError, TypeError, binascii.Error, msgspec.DecodeError):
            raise InvalidCursor("not a cursor issued by this service") from None
        if version != VERSION or not isinstance(issued_ms, int) or not isinstance(document_id, str):
            raise InvalidCursor("cursor format is no longer supported; start from the first page")
        if bound_to != digest:
            raise InvalidCursor("cursor was issued for other filters; start from the first page")
        return Position(sort_time=_EPOCH + issued_ms * _MS, id=document_id)
