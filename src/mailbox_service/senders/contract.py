"""What the sender routes answer beyond their signatures, for `/schema/openapi.json`.

The handlers check these parameters and bodies themselves (senders/controller.py,
senders/feed.py, senders/status_updates.py); the schemas here state the same rules.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.senders.feed import CURSOR_PATTERN
from mailbox_service.senders.status_updates import StatusUpdate
from mailbox_service.server.openapi import documented, struct_components

SOURCE_REF_PATTERN = r"^[\x21-\x7e]+$"
MAX_SOURCE_REF = 200
SOURCE_REF = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SOURCE_REF,
    "pattern": SOURCE_REF_PATTERN,
    "description": "The `source_ref` the document was sent with (exact match).",
}
SINCE = {
    "type": "string",
    # Empty is "from the beginning", as if not given.
    "pattern": f"^({CURSOR_PATTERN.strip('^$')})?$",
    "description": "`next` of the previous page, or an event id (`evt_…`); "
    "none or empty: from the first event.",
}


def _status_body(registry: DocumentTypeRegistry) -> tuple[dict[str, Any], dict[str, Any]]:
    refs, components = struct_components(StatusUpdate)
    schema = components["StatusUpdate"]
    every_status = sorted({status for doctype in registry for status in doctype.statuses})
    schema["properties"]["status"] = {
        **schema["properties"]["status"],
        "enum": every_status,
        "description": "One of the document type's statuses (`GET /v1/document-types` lists "
        "them per type); another type's status is a 422.",
    }
    body = {
        "required": True,
        "description": 'The new business status: `{"status": "paid", "status_at": '
        '"2026-11-30T08:15:00+01:00"}`.',
        "content": {"application/json": {"schema": refs[0]}},
    }
    return body, components


FIND = documented(parameters={"source_ref": SOURCE_REF}, required=("source_ref",))
UPDATE = documented(request_body=_status_body)
UPDATE_BY_REF = documented(
    request_body=_status_body, parameters={"source_ref": SOURCE_REF}, required=("source_ref",)
)
CHANGES = documented(parameters={"since": SINCE})
