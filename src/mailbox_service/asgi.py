"""ASGI entry point: `create_app()` is what uvicorn serves.

The Litestar app answers HTTP; Socket.IO (realtime/) is mounted around it at /socket.io.
"""

from __future__ import annotations

from typing import Any

import socketio

from mailbox_service.auth.tokens import TokenVerifier
from mailbox_service.observability.request_id import RequestIdMiddleware
from mailbox_service.realtime.payloads import EngineIoBodyLimit
from mailbox_service.realtime.server import create_socketio_server
from mailbox_service.server.request_limits import RequestSizeLimit
from mailbox_service.server.security_headers import SecurityHeaders
from mailbox_service.settings import Settings, load_settings
from mailbox_service.wiring.app import create_litestar


def create_app(settings: Settings | None = None) -> Any:
    settings = settings or load_settings()
    litestar_app = create_litestar(settings)
    # Lifespan events pass through to Litestar (ASGIApp forwards them when given no hooks).
    sio = create_socketio_server(settings, TokenVerifier(settings.auth))
    app = socketio.ASGIApp(sio, other_asgi_app=litestar_app, socketio_path="socket.io")
    # Outermost but for the headers: every HTTP answer, a 404 included, carries its request id.
    return SecurityHeaders(RequestIdMiddleware(RequestSizeLimit(EngineIoBodyLimit(app))))
