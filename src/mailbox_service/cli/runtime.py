"""Runs an async command body with settings and services, closing them afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mailbox_service.log import configure_logging
from mailbox_service.observability import tracing
from mailbox_service.settings import load_settings
from mailbox_service.wiring.services import Services

T = TypeVar("T")


def run_with_services(body: Callable[[Services], Awaitable[T]]) -> T:
    settings = load_settings()
    configure_logging(settings.log_format, enrich=(tracing.add_trace_ids,))

    async def main() -> T:
        services = Services.build(settings)
        try:
            return await body(services)
        finally:
            await services.close()

    return asyncio.run(main())
