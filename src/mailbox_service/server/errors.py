"""The one place where errors become HTTP responses.

Body: {"error": {"status": 422, "code": "invalid_metadata", "message": "...", "field": "...",
"request_id": "..."}} (`request_id` is the request's X-Request-ID, echoed in that header too).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from mailbox_service.errors import MailboxError, RateLimited
from mailbox_service.log import get_logger
from mailbox_service.observability.request_id import current_request_id

log = get_logger(__name__)

ErrorFollowup = Callable[[Request[Any, Any, Any], MailboxError], BackgroundTask | None]
"""Work to run after an error answer is sent (the composition root passes the audit trail's:
an entry and an alert count for a 401, a 429 and a portal 404), or None for none."""


def _code(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def error_body(status: int, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if field:
        error["field"] = field
    if request_id := current_request_id.get():
        error["request_id"] = request_id
    return {"error": error}


def mailbox_error_handler(
    followup: ErrorFollowup | None = None,
) -> Callable[[Request[Any, Any, Any], MailboxError], Response[Any]]:
    def handle(request: Request[Any, Any, Any], exc: MailboxError) -> Response[Any]:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return Response(
            error_body(exc.status_code, _code(type(exc).__name__), exc.message, exc.field),
            status_code=exc.status_code,
            headers=headers,
            # Runs after the answer is sent: a failing request is answered as fast as before.
            background=followup(request, exc) if followup is not None else None,
        )

    return handle


def _validation_field(exc: ValidationException) -> str | None:
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        key = extra[0].get("key")
        return str(key) if key else None
    return None


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    field = _validation_field(exc) if isinstance(exc, ValidationException) else None
    message = exc.detail
    if field:
        message = f"{field}: {exc.extra[0].get('message', exc.detail)}"  # type: ignore[index]
    code = "bad_request" if exc.status_code == 400 else _code(type(exc).__name__)
    return Response(
        error_body(exc.status_code, code, message, field),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("request.failed", path=request.url.path, error=type(exc).__name__)
    return Response(
        error_body(500, "internal_error", "internal server error"),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def exception_handlers(followup: ErrorFollowup | None = None) -> dict[Any, Any]:
    """Every error the app raises, to the one envelope; `followup` runs after a MailboxError."""
    return {
        MailboxError: mailbox_error_handler(followup),
        HTTPException: http_error_handler,
        Exception: unexpected_error_handler,
    }
