"""HTTP door of webhooks, for API keys with `admin` scope (the CLI is the other door; both
call webhooks/operations.py).

Routes:
    POST   /v1/admin/webhooks                           create; answers the secret, once
    GET    /v1/admin/webhooks[?source=]                 list (never a secret)
    POST   /v1/admin/webhooks/{endpoint_id}/revoke      revoke (it stays listed, disabled)
    POST   /v1/admin/webhooks/{endpoint_id}/test        send a signed test event now
    GET    /v1/admin/webhooks/{endpoint_id}/deliveries  its deliveries, newest first
    GET    /v1/admin/webhook-deliveries[?status=]       all deliveries, newest first
    POST   /v1/admin/webhook-deliveries/{id}/resend     send again, same webhook-id
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import Body, FromPath, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_admin_key
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import documented, errors
from mailbox_service.webhooks.deliveries import DeliveryStatus, WebhookDelivery
from mailbox_service.webhooks.endpoints import (
    SOURCE_PATTERN,
    CreatedEndpoint,
    WebhookEndpoint,
    checked_source,
)
from mailbox_service.webhooks.operations import TestResult, WebhookOperations

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class WebhookServices:
    """What the webhook routes use, built once by the composition root (wiring/)."""

    webhooks: WebhookOperations
    audit: AuditTrail
    credentials: CredentialStores


WebhookServicesDep = NamedDependency[WebhookServices]


class CreateWebhook(msgspec.Struct):
    """`url` and `events` are checked by the service, which answers 422 naming the field."""

    source: str
    """The sender whose events go to this endpoint (an API key's source)."""
    url: str
    """http(s) URL, at most 2048 bytes, not on a link-local, metadata or unspecified address."""
    events: list[str]
    """Event types (see docs/senders.md), or `["*"]` for every type."""


class EndpointList(msgspec.Struct):
    items: list[WebhookEndpoint]


class DeliveryList(msgspec.Struct):
    items: list[WebhookDelivery]


def _by(api_key: ApiKeyDep) -> str:
    return f"admin key {api_key.key_id}"


StatusFilter = Annotated[
    DeliveryStatus | None,
    Parameter(description="pending, sending, delivered or failed; default: any."),
]
PageSize = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="At most this many.")]


class AdminWebhooksController(Controller):
    path = "/v1/admin"
    tags = ["admin"]
    dependencies = {"services": provided(WebhookServices), "api_key": Provide(provide_admin_key)}
    security = [{"apiKey": ["admin"]}]

    @post(
        "/webhooks",
        operation_id="createWebhook",
        status_code=HTTP_201_CREATED,
        responses=errors(400, 401, 403, 422, 429),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        data: Annotated[CreateWebhook, Body(description="Where a source's events go.")],
    ) -> CreatedEndpoint:
        """Create an endpoint. The answer holds its signing secret (`whsec_...`): the only
        time it is shown. 422: a URL that is not http(s), over 2 KiB or on a link-local,
        metadata or unspecified address; an unknown event type; a malformed source."""
        created = await services.webhooks.create(
            source=data.source, url=data.url, events=data.events, by=_by(api_key)
        )
        await record_key(
            request,
            services,
            api_key,
            "webhook.created",
            details={
                "endpoint_id": created.id,
                "source": created.source,
                "url": created.url[:512],
                "events": created.events,
            },
        )
        return created

    @get(
        "/webhooks",
        operation_id="listWebhooks",
        responses=errors(400, 401, 403, 422, 429),
        opt=documented(parameters={"source": {"type": "string", "pattern": SOURCE_PATTERN}}),
    )
    async def list_endpoints(
        self,
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        source: Annotated[str | None, Parameter(description="Only this source's.")] = None,
    ) -> EndpointList:
        """Every endpoint (active and disabled), oldest first; never a secret."""
        if source is not None:
            checked_source(source)
        return EndpointList(await services.webhooks.all(source))

    @post(
        "/webhooks/{endpoint_id:str}/revoke",
        operation_id="revokeWebhook",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 429),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        endpoint_id: FromPath[str],
    ) -> WebhookEndpoint:
        """Disable an endpoint for good: no new deliveries, and pending ones fail at their
        next attempt. It stays listed (disabled, with the reason) with its deliveries.
        Revoking a disabled endpoint changes nothing."""
        endpoint = await services.webhooks.revoke(endpoint_id, _by(api_key))
        await record_key(
            request,
            services,
            api_key,
            "webhook.revoked",
            details={"endpoint_id": endpoint.id, "source": endpoint.source},
        )
        return endpoint

    @post(
        "/webhooks/{endpoint_id:str}/test",
        operation_id="testWebhook",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 429),
    )
    async def test(
        self,
        request: Request[Any, Any, Any],
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        endpoint_id: FromPath[str],
    ) -> TestResult:
        """Send a signed `webhook.test` event to the endpoint now and answer what the
        receiver said (or why it said nothing). Nothing is recorded on the endpoint."""
        result = await services.webhooks.test(endpoint_id)
        await record_key(
            request,
            services,
            api_key,
            "webhook.tested",
            details={"endpoint_id": endpoint_id, "status_code": result.status_code},
        )
        return result

    @get(
        "/webhooks/{endpoint_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        responses=errors(400, 401, 403, 404, 429),
    )
    async def endpoint_deliveries(
        self,
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        endpoint_id: FromPath[str],
        status: StatusFilter = None,
        limit: PageSize = 100,
    ) -> DeliveryList:
        """An endpoint's deliveries, newest first, each with its last attempts."""
        found = await services.webhooks.page(endpoint_id=endpoint_id, status=status, limit=limit)
        return DeliveryList(found)

    @get(
        "/webhook-deliveries",
        operation_id="listAllWebhookDeliveries",
        responses=errors(400, 401, 403, 429),
    )
    async def all_deliveries(
        self,
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        status: StatusFilter = None,
        limit: PageSize = 100,
    ) -> DeliveryList:
        """Every endpoint's deliveries, newest first; `?status=failed` for what needs a look."""
        found = await services.webhooks.page(endpoint_id=None, status=status, limit=limit)
        return DeliveryList(found)

    @post(
        "/webhook-deliveries/{delivery_id:str}/resend",
        operation_id="resendWebhookDelivery",
        status_code=HTTP_200_OK,
        responses=errors(401, 403, 404, 409, 429),
    )
    async def resend(
        self,
        request: Request[Any, Any, Any],
        services: WebhookServicesDep,
        api_key: ApiKeyDep,
        delivery_id: FromPath[str],
    ) -> WebhookDelivery:
        """Deliver again: back to `pending` with attempts from zero, the same `webhook-id` and
        body. 409 while an attempt is in progress."""
        delivery = await services.webhooks.resend(delivery_id, _by(api_key))
        await record_key(
            request,
            services,
            api_key,
            "webhook.resent",
            details={"delivery_id": delivery_id, "endpoint_id": delivery.endpoint_id},
        )
        return delivery
