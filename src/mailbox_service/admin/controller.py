"""HTTP door of the operator API: `/v1/admin/notifications...`, for API keys with `admin` scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

from mailbox_service.admin import contract
from mailbox_service.admin.schemas import NotificationPage, NotificationStats, ResendResult
from mailbox_service.admin.service import MAX_PAGE, NotificationAdmin
from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_admin_key
from mailbox_service.clock import parse_time
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import errors


@dataclass(frozen=True, slots=True)
class AdminNotificationsServices:
    """What the operators' notification routes use, built once by the composition root (wiring/)."""

    notifications: NotificationAdmin
    audit: AuditTrail
    credentials: CredentialStores


AdminNotificationsServicesDep = NamedDependency[AdminNotificationsServices]


class AdminNotificationsController(Controller):
    path = "/v1/admin/notifications"
    tags = ["admin"]
    dependencies = {
        "services": provided(AdminNotificationsServices),
        "api_key": Provide(provide_admin_key),
    }
    security = [{"apiKey": ["admin"]}]

    @get(
        "/stats",
        operation_id="notificationStats",
        responses=errors(400, 401, 403, 429),
        opt=contract.STATS,
    )
    async def stats(
        self,
        services: AdminNotificationsServicesDep,
        api_key: ApiKeyDep,
        since: Annotated[
            str | None,
            Parameter(
                description="Created at or after (date or ISO time); default 7 days before `until`."
            ),
        ] = None,
        until: Annotated[
            str | None, Parameter(description="Created before (date or ISO time); default now.")
        ] = None,
    ) -> NotificationStats:
        """Documents by channel x status x type, in total and per UTC day of creation."""
        return await services.notifications.stats(
            parse_time(since, "since"), parse_time(until, "until")
        )

    @get(
        "/",
        operation_id="listNotifications",
        responses=errors(400, 401, 403, 429),
        opt=contract.LIST,
    )
    async def list_notifications(
        self,
        services: AdminNotificationsServicesDep,
        api_key: ApiKeyDep,
        status: Annotated[
            str, Parameter(description="pending, sending, sent, failed or skipped.")
        ] = "failed",
        channel: Annotated[
            str | None, Parameter(description="email or realtime; default: either.")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor` of the previous page.")
        ] = None,
    ) -> NotificationPage:
        """Documents whose notification is in `status` (with the last error), newest first."""
        return await services.notifications.list(status, channel, limit, cursor)

    @post(
        "/{document_id:str}/resend",
        operation_id="resendNotification",
        status_code=HTTP_202_ACCEPTED,
        responses=errors(400, 401, 403, 404, 409, 429),
        opt=contract.RESEND,
    )
    async def resend(
        self,
        request: Request[Any, Any, Any],
        services: AdminNotificationsServicesDep,
        api_key: ApiKeyDep,
        document_id: FromPath[str],
        channel: Annotated[str | None, Parameter(description="email or realtime.")] = None,
    ) -> ResendResult:
        """Reset the channel to `pending` (attempts from zero) and enqueue it again.

        400 unknown channel, 404 unknown document, 409 email for a printed document or a
        delivery in progress.
        """
        result = await services.notifications.resend(
            document_id, channel, by=f"admin key {api_key.key_id} ({api_key.source})"
        )
        await record_key(
            request,
            services,
            api_key,
            "notification.resent",
            document_id=result.document_id,
            details={"channel": result.channel, "enqueued": result.enqueued},
        )
        return result
