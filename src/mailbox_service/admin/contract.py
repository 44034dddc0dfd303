"""What the operator routes answer beyond their signatures, for `/schema/openapi.json`.

The handlers check these parameters themselves (admin/service.py); the schemas here state the
same rules for clients.
"""

from __future__ import annotations

from mailbox_service.cursors import MAX_CURSOR_LENGTH
from mailbox_service.notifications.channels import CHANNELS, STATUSES
from mailbox_service.server.openapi import documented

_INSTANT = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "maxLength": 0, "description": "Empty: as if not given."},
    ],
}
_CHANNEL = {"type": "string", "enum": list(CHANNELS)}

STATS = documented(
    parameters={
        "since": {**_INSTANT, "description": "Created at or after (a date is midnight UTC)."},
        "until": {**_INSTANT, "description": "Created before; at most 366 days after `since`."},
    }
)
LIST = documented(
    parameters={
        "status": {"type": "string", "enum": list(STATUSES), "default": "failed"},
        "channel": {**_CHANNEL, "description": "Default: either channel."},
        "cursor": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_-]*$",
            "maxLength": MAX_CURSOR_LENGTH,
            "description": "`next_cursor` of the previous page (empty: the first page).",
        },
    }
)
RESEND = documented(parameters={"channel": _CHANNEL}, required=("channel",))
