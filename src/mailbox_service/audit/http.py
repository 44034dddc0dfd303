"""The audit trail and the intrusion alerts as seen from an HTTP request.

`request_facts` gives what every entry records about the request: the client address and the
request id (set by the request-id middleware; None without it). `error_followup` is what the
one error handler (`server/errors.py`) attaches to a 401, a 429 and a portal 404: it runs after
the response is sent, so a failing request is answered as fast as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from litestar import Request
from litestar.background_tasks import BackgroundTask

from mailbox_service.audit.alerts import AlertKind
from mailbox_service.audit.entry import ANONYMOUS, PortalCaller, key_actor, portal_actor
from mailbox_service.auth import providers
from mailbox_service.auth.providers import PORTAL_USER_STATE
from mailbox_service.errors import MailboxError, NotFound, Unauthenticated

if TYPE_CHECKING:
    from mailbox_service.audit.trail import AuditTrail
    from mailbox_service.storage.api_keys import ApiKey

PORTAL_PATH = "/v1/mailbox/"


class Audited(Protocol):
    """What a controller's dependency offers for recording: the trail."""

    @property
    def audit(self) -> AuditTrail: ...


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """The address the rate limits charge (X-Forwarded-For only from trusted proxies)."""
    services = request.app.state.get("services")
    budgets = getattr(services, "rate_limits", None)
    if budgets is not None:
        return providers.client_address(request, budgets)
    return request.client.host if request.client else None


def request_facts(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """`client` and `request_id` keyword arguments for AuditTrail.record."""
    request_id = request.state.get("request_id")
    return {
        "client": client_address(request),
        "request_id": request_id if isinstance(request_id, str) else None,
    }


def error_followup(request: Request[Any, Any, Any], exc: MailboxError) -> BackgroundTask | None:
    """Audit entry and alert count for an error answer, to run after it is sent; None for
    errors that are neither."""
    services = request.app.state.get("services")
    if services is None:
        return None
    user = request.state.get(PORTAL_USER_STATE)
    subject = getattr(user, "sub", None)
    facts = request_facts(request)
    address = facts["client"] or "unknown"
    details = {"method": request.method, "path": request.url.path[:256]}
    if isinstance(exc, Unauthenticated):
        # The reason, never the presented credentials: no message of Unauthenticated quotes them.
        entry = ("auth.failed", ANONYMOUS, {**details, "reason": exc.message[:256]})
        return BackgroundTask(_follow, services, entry, facts, "auth_failed", address)
    if exc.status_code == 429:
        limited = exc.extra.get("subject")
        key = subject or (limited if isinstance(limited, str) else None) or address
        actor = portal_actor(user) if user is not None else ANONYMOUS
        entry = ("rate.limited", actor, {**details, "reason": exc.message[:256]})
        return BackgroundTask(_follow, services, entry, facts, "rate_limited", key)
    if isinstance(exc, NotFound) and subject and request.url.path.startswith(PORTAL_PATH):
        # A portal user asking for a document or account that is not theirs looks exactly
        # like one asking for something that does not exist; many of them is probing.
        return BackgroundTask(_follow, services, None, facts, "not_found", subject)
    return None


async def _follow(
    services: Any,
    entry: tuple[str, dict[str, str], dict[str, Any]] | None,
    facts: dict[str, str | None],
    kind: AlertKind,
    key: str,
) -> None:
    if entry is not None:
        action, actor, details = entry
        await services.audit.record(action, actor, details=details, **facts)
    await services.alerts.observe(kind, key)


async def record_portal(
    request: Request[Any, Any, Any],
    services: Audited,
    user: PortalCaller,
    action: str,
    *,
    account_id: str | None = None,
    document_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit what a portal caller just did (buffered: costs no database round trip)."""
    await services.audit.record(
        action,
        portal_actor(user, account_id),
        account_id=account_id,
        document_id=document_id,
        details=details,
        **request_facts(request),
    )


async def record_key(
    request: Request[Any, Any, Any],
    services: Audited,
    key: ApiKey,
    action: str,
    *,
    account_id: str | None = None,
    document_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit what an API key's holder just did."""
    await services.audit.record(
        action,
        key_actor(key),
        account_id=account_id,
        document_id=document_id,
        details=details,
        **request_facts(request),
    )
