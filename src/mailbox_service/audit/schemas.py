"""Response bodies of `GET /v1/admin/audit`; `mailbox-service audit --json` prints the same."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class AuditActor(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who acted: a portal user (`sub`, and `role` when the token carries one), an API key
    (`key_id`, `source`), the `operator` (CLI) or `anonymous` (failed authentication)."""

    kind: str
    sub: str | None = None
    role: str | None = None
    key_id: str | None = None
    source: str | None = None


class AuditItem(msgspec.Struct, frozen=True):
    """One audit entry; `hash` chains it to `prev_hash`, the entry before it that day."""

    id: str
    at: dt.datetime
    action: str
    actor: AuditActor
    account_id: str | None
    document_id: str | None
    client: str | None
    request_id: str | None
    details: dict[str, Any] | None
    day: str
    seq: int
    prev_hash: str
    hash: str


class AuditPage(msgspec.Struct, frozen=True):
    items: list[AuditItem]
    next_cursor: str | None
