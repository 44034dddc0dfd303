"""What `GET /v1/admin/audit` answers beyond its signature, for `/schema/openapi.json`.

`AuditFilters.parse` and the portal's cursor signer check these parameters; the schemas here
state the same rules for clients.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.audit.query import MAX_VALUE_LENGTH
from mailbox_service.cursors import MAX_CURSOR_LENGTH
from mailbox_service.server.openapi import documented


def _filter_value(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_VALUE_LENGTH,
        "pattern": r"^[\x21-\x7e]+$",
        "description": description,
    }


LIST = documented(
    parameters={
        "account_id": _filter_value("Only this account."),
        "document_id": _filter_value("Only this document."),
        "actor": _filter_value("Only this actor: a token `sub`, an API key id, `operator`..."),
        "since": {
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
                {"type": "string", "maxLength": 0, "description": "Empty: as if not given."},
            ],
            "description": "At or after (a date is midnight UTC).",
        },
        "cursor": {
            "type": "string",
            "pattern": r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$",
            "maxLength": MAX_CURSOR_LENGTH,
            "description": "`next_cursor` of the previous page, same filters (empty: first page).",
        },
    }
)
