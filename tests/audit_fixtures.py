"""Helpers for the audit trail tests: read entries as they land, in a database of one's own."""

from __future__ import annotations

import msgspec

from app_fixtures import unique
from mailbox_service.settings import Settings
from mailbox_service.storage.mongo import Doc
from mailbox_service.wiring.services import Services
from notify_fixtures import eventually


async def audit_entries(
    services: Services, query: Doc, count: int, *, within: float = 15
) -> list[Doc]:
    """Wait until at least `count` entries match `query` (written by any process within its
    flush interval), then return them oldest first (chain order within a day)."""

    async def probe() -> list[Doc]:
        return await services.database.audit.find(query).sort([("at", 1), ("_id", 1)]).to_list()

    return await eventually(
        probe, lambda found: len(found) >= count, within=within, what=f"{count} audit entries"
    )


def own_database(settings: Settings, **audit: object) -> Settings:
    """Settings on a fresh database (so a test may damage its chain), audit settings adjusted."""
    mongo = msgspec.structs.replace(settings.mongo, database=unique("audit").replace("-", "_"))
    return msgspec.structs.replace(
        settings, mongo=mongo, audit=msgspec.structs.replace(settings.audit, **audit)
    )
