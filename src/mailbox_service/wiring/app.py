"""The Litestar application factory (HTTP only; asgi.py adds Socket.IO around it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from mailbox_service.admin.bounces import AdminBouncesController
from mailbox_service.admin.controller import AdminNotificationsController
from mailbox_service.admin.holds import AdminHoldsController
from mailbox_service.audit.controller import AdminAuditController
from mailbox_service.audit.http import error_followup
from mailbox_service.doctypes import load_registry
from mailbox_service.evidence.controller import EvidenceController
from mailbox_service.evidence.keys import KEY_SETTING
from mailbox_service.ingestion.controller import IngestionController
from mailbox_service.log import configure_logging, get_logger
from mailbox_service.mailbox.controller import MailboxController
from mailbox_service.observability import metrics, tracing
from mailbox_service.observability.exposition import metrics_controller
from mailbox_service.observability.http_metrics import route_metrics_config
from mailbox_service.portal import portal_handlers
from mailbox_service.senders.controller import SenderDocumentsController
from mailbox_service.server.allow import list_every_method_in_allow
from mailbox_service.server.deps import CONTROLLER_SERVICES
from mailbox_service.server.errors import exception_handlers
from mailbox_service.server.health import HealthController
from mailbox_service.server.openapi import publish_contract
from mailbox_service.server.rate_limit import limit_anonymous_routes
from mailbox_service.server.request_limits import enforce_request_limits
from mailbox_service.settings import Settings
from mailbox_service.webhooks.controller import AdminWebhooksController
from mailbox_service.wiring.controllers import controller_services
from mailbox_service.wiring.services import Services

log = get_logger(__name__)


def documents_router() -> Router:
    """`/v1/documents` of the ingest door (POST) and the sender's status API (GET, PATCH).

    Litestar 2 refuses two registrations of one path (each brings an automatic OPTIONS
    handler); inside one router they merge into one route first.
    """
    return Router(path="/", route_handlers=[IngestionController, SenderDocumentsController])


def route_handlers() -> list[ControllerRouterHandler]:
    return [
        HealthController,
        documents_router(),
        MailboxController,
        AdminNotificationsController,
        AdminAuditController,
        AdminHoldsController,
        AdminBouncesController,
        AdminWebhooksController,
        EvidenceController,
    ]


def observability_middleware(settings: Settings) -> list[DefineMiddleware | Any]:
    """Request counts and latency by route template and status, and a span per request."""
    middleware: list[DefineMiddleware | Any] = []
    if settings.metrics.enabled:
        middleware.append(route_metrics_config().middleware)
    if tracing.enabled():
        middleware.append(tracing.TraceRequests)
    return middleware


def create_litestar(
    settings: Settings,
    *,
    services: Services | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Any] = (),
) -> Litestar:
    """Build the HTTP app. `services` may be given by tests; otherwise built at start-up."""
    configure_logging(settings.log_format, enrich=(tracing.add_trace_ids,))
    metrics.configure(settings.metrics.enabled)
    tracing.configure(settings.otel, "api")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.build(settings)
        app.state[CONTROLLER_SERVICES] = controller_services(
            app.state.services, demo_portal=settings.demo_portal
        )
        # A broken evidence key stops start-up; a missing one only disables the routes (503).
        app.state.services.evidence_key.check()
        if not app.state.services.evidence_key.configured:
            log.warning(
                "evidence.key_missing",
                message=f"{KEY_SETTING} is not set: evidence routes answer 503",
            )
        try:
            yield
        finally:
            if owned:
                await app.state.services.close()

    app = Litestar(
        route_handlers=[
            *route_handlers(),
            # The reference inbox exists only in demo mode: otherwise /portal is a 404.
            *(portal_handlers() if settings.demo_portal else []),
            *extra_handlers,
            *([metrics_controller(settings.metrics)] if settings.metrics.enabled else []),
        ],
        middleware=observability_middleware(settings),
        exception_handlers=exception_handlers(error_followup),
        # Ours (log.py): Litestar's default would replace the JSON handler on the root logger.
        logging_config=None,
        guards=[limit_anonymous_routes],
        before_request=enforce_request_limits,
        lifespan=[lifespan],
        on_startup=list(on_startup),
        openapi_config=OpenAPIConfig(
            title="mailbox-service",
            version="1.0.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API key `mbx_…` (`mailbox-service keys create`); the "
                        "operation's security requirement names the scope it needs "
                        "(`ingest` or `admin`; none: any key).",
                    ),
                    "portalJwt": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT", description="Portal JWT"
                    ),
                }
            ),
        ),
        debug=False,
    )
    publish_contract(app, services.registry if services else load_registry())
    list_every_method_in_allow(app)
    return app
