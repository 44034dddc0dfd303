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
from mailbox_service.settings import WebhookSettings
from mailbox_service.storage.mongo import Collections
from mailbox_service.webhooks.courier import WebhookJobs
from mailbox_service.webhooks.deliveries import (
    DELIVERY_PREFIX,
    DeliveryStatus,
    DeliveryStore,
    WebhookDelivery,
)
from mailbox_service.webhooks.endpoints import CreatedEndpoint, EndpointStore, WebhookEndpoint
from mailbox_service.webhooks.sender import WebhookSender
from mailbox_service.webhooks.signing import signed_headers, test_payload


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
        self.endpoints = EndpointStore(collections.webhook_endpoints)
        self.deliveries = DeliveryStore(collections.webhook_deliveries)
        self.jobs = WebhookJobs(broker)
        self.settings = settings

    async def create(
        self, *, source: str, url: str, events: Sequence[str], by: str
    ) -> CreatedEndpoint:
        return await self.endpoints.create(
            source=source,
            url=url,
            events=events,
            by=by,
            allow_private=self.settings.allow_private,
        )

    async def all(self, source: str | None = None) -> list[WebhookEndpoint]:
        return await self.endpoints.all(source)

    async def revoke(self, endpoint_id: str, by: str) -> WebhookEndpoint:
        return await self.endpoints.revoke(endpoint_id, by)

    async def test(self, endpoint_id: str) -> TestResult:
        """Send a signed `webhook.test` event now, whatever the endpoint's state (to check a
        receiver before re-creating a disabled endpoint); its answer changes nothing."""
        stored = await self.endpoints.get_stored(endpoint_id)
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
        if endpoint_id is not None:
            await self.endpoints.get_stored(endpoint_id)  # NotFound for an unknown endpoint
        return await self.deliveries.page(endpoint_id=endpoint_id, status=status, limit=limit)

    async def resend(self, delivery_id: str, by: str) -> WebhookDelivery:
        """Pending again, same id and body, and a job for it now (the sweep covers a failed
        enqueue)."""
        delivery = await self.deliveries.resend(delivery_id, by)
        await anyio.to_thread.run_sync(self.jobs.enqueue, delivery_id)
        return delivery
