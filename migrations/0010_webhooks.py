"""Indexes of `webhook_endpoints` and `webhook_deliveries` (webhooks/).

Endpoints: the dispatcher looks up a source's active endpoints for every event: (source, state).
Deliveries: the sweep looks for due `pending` and expired `sending` ones: (status, next_at)
serves the first, and the few `sending` ones are scanned under the same status key; operators
list them newest first, per endpoint (endpoint_id, created_at) or by status (status,
created_at), or all of them (created_at). `_id` (derived from event and endpoint) makes a
repeated dispatch a duplicate key. Plain compound indexes only: they stay fast on DocumentDB.
Safe to re-run.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from mailbox_service.migrate import MigrationContext

ENDPOINT_INDEXES = [
    IndexModel([("source", ASCENDING), ("state", ASCENDING)], name="webhook_endpoints_source"),
]
DELIVERY_INDEXES = [
    IndexModel([("status", ASCENDING), ("next_at", ASCENDING)], name="webhook_deliveries_due"),
    IndexModel(
        [("endpoint_id", ASCENDING), ("created_at", DESCENDING)],
        name="webhook_deliveries_endpoint",
    ),
    IndexModel(
        [("status", ASCENDING), ("created_at", DESCENDING)], name="webhook_deliveries_status"
    ),
    IndexModel([("created_at", DESCENDING)], name="webhook_deliveries_created"),
]


async def up(ctx: MigrationContext) -> None:
    await ctx.database.webhook_endpoints.create_indexes(ENDPOINT_INDEXES)
    await ctx.database.webhook_deliveries.create_indexes(DELIVERY_INDEXES)
