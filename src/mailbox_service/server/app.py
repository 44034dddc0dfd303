"""The Litestar application factory (HTTP only; asgi.py adds Socket.IO around it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from mailbox_service.admin.controller import AdminNotificationsController
from mailbox_service.ingestion.controller import IngestionController
from mailbox_service.log import configure_logging
from mailbox_service.mailbox.controller import MailboxController
from mailbox_service.portal import portal_handlers
from mailbox_service.server.errors import EXCEPTION_HANDLERS
from mailbox_service.server.health import HealthController
from mailbox_service.server.services import Services
from mailbox_service.settings import Settings


def route_handlers() -> list[ControllerRouterHandler]:
    return [
        HealthController,
        IngestionController,
        MailboxController,
        AdminNotificationsController,
    ]


def create_litestar(
    settings: Settings,
    *,
    services: Services | None = None,
    extra_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Any] = (),
) -> Litestar:
    """Build the HTTP app. `services` may be given by tests; otherwise built at start-up."""
    configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.build(settings)
        try:
            yield
        finally:
            if owned:
                await app.state.services.close()

    def provide_services(state: State) -> Services:
        return state.services  # type: ignore[no-any-return]

    return Litestar(
        route_handlers=[
            *route_handlers(),
            # The reference inbox exists only in demo mode: otherwise /portal is a 404.
            *(portal_handlers() if settings.demo_portal else []),
            *extra_handlers,
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        on_startup=list(on_startup),
        openapi_config=OpenAPIConfig(
            title="mailbox-service",
            version="1.0.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="API key"),
                    "portalJwt": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT", description="Portal JWT"
                    ),
                }
            ),
        ),
        debug=False,
    )
