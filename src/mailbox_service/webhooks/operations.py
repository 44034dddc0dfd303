"""What operators do with webhooks, shared by the admin API and the CLI (one implementation,
two doors): create, list and revoke endpoints, send a test event, list and resend deliveries.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import anyio.to_thread
import dramatiq
import msgspec

from mailbox_service.clock import utcnow
from mailbox_service.errors import Conflict, NotFound
from mailbox_service.settings import WebhookSettings
from mailbox_service.storage.mongo import Collections, Doc
from mailbox_service.storage.webhooks import WebhookDeliveryStore, WebhookEndpointStore
from mailbox_service.webhooks.courier import WebhookJobs
from mailbox_service.webhooks.deliveries import (
    DELIVERY_PREFIX,
    DeliveryStatus,
    WebhookDelivery,
    to_delivery,
)
from mailbox_service.webhooks.endpoints import (
    ENDPOINT_PREFIX,
    CreatedEndpoint,
    WebhookEndpoint,
    checked_events,
    checked_source,
    to_endpoint,
)
from mailbox_service.webhooks.sender import WebhookSender
from mailbox_service.webhooks.signing import new_secret, signed_headers, test_payload
from mailbox_service.webhooks.url_policy import check_for_endpoint


class TestResult(msgspec.Struct, kw_only=True):
    """What the receiver answered to a test event."""

    endpoint_id: str
    webhook_id: str
    """The `webhook-id` the test carried (`whmsg_test_...`; never reused)."""
    delivered: bool
    """True when the receiver answered 2xx."""
    status_code: int | None = None
    error: str | None = None
    """Why no answer came (timeout, refused connection, refused address)."""
    ms: int
    body: str = ""
    """The first KiB of the receiver's answer."""


class WebhookOperations:
    def __init__(
        self, collections: Collections, broker: dramatiq.Broker, settings: WebhookSettings
    ) -> None:
        self.endpoints = WebhookEndpointStore(collections)
        self.deliveries = WebhookDeliveryStore(collections)
        self.jobs = WebhookJobs(broker)
        self.settings = settings

    async def create(
        self, *, source: str, url: str, events: Sequence[str], by: str
    ) -> CreatedEndpoint:
        source = checked_source(source)
        subscription = checked_events(events)
        allow_private = self.settings.allow_private
        await anyio.to_thread.run_sync(lambda: check_for_endpoint(url, allow_private=allow_private))
        stored: Doc = {
            "_id": ENDPOINT_PREFIX + secrets.token_hex(8),
            "source": source,
            "url": url,
            "events": subscription,
            "secret": new_secret(),
            "state": "active",
            "disabled_reason": None,
            "disabled_at": None,
            "created_at": utcnow(),
            "created_by": by,
        }
        await self.endpoints.insert(stored)
        endpoint = to_endpoint(stored)
        return CreatedEndpoint(**msgspec.structs.asdict(endpoint), secret=stored["secret"])

    async def all(self, source: str | None = None) -> list[WebhookEndpoint]:
        return [to_endpoint(doc) for doc in await self.endpoints.all(source)]

    async def _stored_endpoint(self, endpoint_id: str) -> Doc:
        """With its secret; NotFound when there is no such endpoint."""
        found = await self.endpoints.get(endpoint_id)
        if found is None:
            raise NotFound(f"no webhook endpoint {endpoint_id[:64]!r}", field="endpoint_id")
        return found

    async def revoke(self, endpoint_id: str, by: str) -> WebhookEndpoint:
        """Disable for good; revoking a disabled endpoint keeps its first reason."""
        changed = await self.endpoints.disable(endpoint_id, f"revoked by {by}")
        if changed is None:
            return to_endpoint(await self._stored_endpoint(endpoint_id))
        return to_endpoint(changed)

    async def test(self, endpoint_id: str) -> TestResult:
        """Send a signed `webhook.test` event now, whatever the endpoint's state (to check a
        receiver before re-creating a disabled endpoint); its answer changes nothing."""
        stored = await self._stored_endpoint(endpoint_id)
        at = utcnow()
        message_id = f"{DELIVERY_PREFIX}test_{secrets.token_hex(12)}"
        body = test_payload(endpoint_id, at)
        headers = signed_headers(stored["secret"], message_id, body, at)
        sender = WebhookSender(
            timeout_s=self.settings.timeout_s, allow_private=self.settings.allow_private, pool=1
        )
        try:
            answer = await anyio.to_thread.run_sync(sender.post, stored["url"], body, headers)
        finally:
            sender.close()
        return TestResult(
            endpoint_id=endpoint_id,
            webhook_id=message_id,
            delivered=answer.delivered,
            status_code=answer.status_code,
            error=answer.error,
            ms=round(answer.seconds * 1000),
            body=answer.body,
        )

    async def page(
        self, *, endpoint_id: str | None, status: DeliveryStatus | None, limit: int
    ) -> list[WebhookDelivery]:
        """Newest first."""
        if endpoint_id is not None:
            await self._stored_endpoint(endpoint_id)  # NotFound for an unknown endpoint
        found = await self.deliveries.page(endpoint_id=endpoint_id, status=status, limit=limit)
        return [to_delivery(doc) for doc in found]

    async def get(self, delivery_id: str) -> WebhookDelivery:
        found = await self.deliveries.get(delivery_id)
        if found is None:
            raise NotFound(f"no webhook delivery {delivery_id[:64]!r}", field="delivery_id")
        return to_delivery(found)

    async def resend(self, delivery_id: str, by: str) -> WebhookDelivery:
        """Pending again, same id and body, and a job for it now (the sweep covers a failed
        enqueue)."""
        after = await self.deliveries.resend(delivery_id, by)
        if after is None:
            await self.get(delivery_id)  # NotFound, or it exists and is busy
            raise Conflict(
                "this delivery is being attempted right now; try again shortly",
                field="delivery_id",
            )
        await anyio.to_thread.run_sync(self.jobs.enqueue, delivery_id)
        return to_delivery(after)
