"""What the portal routes answer beyond their signatures, for `/schema/openapi.json`.

The handlers check these parameters themselves (mailbox/filters.py, cursors.py,
mailbox/content.py); the schemas here state the same rules for clients.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.cursors import MAX_CURSOR_LENGTH
from mailbox_service.mailbox.schemas import PreferencesUpdate
from mailbox_service.server.openapi import (
    CONTENT_DISPOSITION,
    CONTENT_LENGTH,
    CONTENT_RANGE,
    ETAG,
    document_type_names,
    documented,
    struct_components,
)
from mailbox_service.types import AccountId

_ACCOUNT_ID = struct_components(AccountId)[0][0]
_INSTANT = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "maxLength": 0, "description": "Empty: as if not given."},
    ],
    "description": "A date (`2026-01-31`, UTC) or an RFC 3339 time with offset.",
}

LIST = documented(
    parameters={
        "account": {**_ACCOUNT_ID, "description": "Only this account (one of the token's)."},
        "type": document_type_names,
        "issued_from": _INSTANT,
        "issued_to": {**_INSTANT, "description": "Issued before; a date includes its day."},
        "cursor": {
            "type": "string",
            "pattern": r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$",
            "maxLength": MAX_CURSOR_LENGTH,
            "description": "`next_cursor` of the previous page, same filters (empty: first page).",
        },
    }
)

DOWNLOAD = documented(
    headers={
        200: (ETAG, CONTENT_DISPOSITION, CONTENT_LENGTH),
        206: (ETAG, CONTENT_RANGE, CONTENT_DISPOSITION, CONTENT_LENGTH),
        304: (ETAG,),
        416: (CONTENT_RANGE,),
    },
    request_headers=(
        {
            "name": "Range",
            "description": "One byte range, `bytes=a-b`, `a-` or `-n` (206); anything else: 200.",
            "schema": {"type": "string"},
        },
        {
            "name": "If-None-Match",
            "description": "ETags the client holds; a match answers 304.",
            "schema": {"type": "string"},
        },
        {
            "name": "If-Range",
            "description": "The ETag a Range is for; a stale one gets the whole file.",
            "schema": {"type": "string"},
        },
    ),
    file_responses=(200, 206),
)


def _preferences_body(_: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    refs, components = struct_components(PreferencesUpdate)
    body = {
        "required": True,
        "description": "Fields left out stay as they are; `null` clears `email` or `locale`.",
        "content": {"application/json": {"schema": refs[0]}},
    }
    return body, components


PREFERENCES_UPDATE = documented(request_body=_preferences_body)
