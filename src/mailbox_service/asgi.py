"""ASGI entry point: `create_app()` is what uvicorn serves.

The Litestar app answers HTTP; Socket.IO (realtime/) is mounted around it at /socket.io.
"""

from __future__ import annotations

from typing import Any

from mailbox_service.server.app import create_litestar
from mailbox_service.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Any:
    settings = settings or load_settings()
    return create_litestar(settings)
