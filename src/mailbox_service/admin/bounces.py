"""HTTP door of bounce intake: `POST /v1/admin/bounces`, for API keys with `admin` scope.

For relays that report a bounce after accepting the email (a DSN, a provider's webhook):
an operator's integration posts it here. What a bounce does: senders/bounces.py.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.di import Provide
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from mailbox_service.audit.http import record_key
from mailbox_service.senders.bounces import BounceIntake, BounceReport, BounceResult
from mailbox_service.senders.email_outcomes import for_sender
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.server.auth import provide_admin_key
from mailbox_service.server.deps import ApiKeyDep, ServicesDep
from mailbox_service.server.openapi import errors


def _intake(services: ServicesDep) -> BounceIntake:
    documents = services.collections.documents
    events = services.sender_events
    return BounceIntake(documents, events, PrintFallback(documents, events))


class AdminBouncesController(Controller):
    path = "/v1/admin/bounces"
    tags = ["admin"]
    dependencies = {"api_key": Provide(provide_admin_key)}
    security = [{"apiKey": ["admin"]}]

    @post(
        "/",
        operation_id="reportBounce",
        status_code=HTTP_200_OK,
        responses=errors(
            400,
            401,
            403,
            404,
            409,
            422,
            429,
            503,
            notes={
                404: "No document with this id, or no notification email with this Message-ID.",
                409: "`recipient` is not the address the notification was sent to.",
                422: "Neither or both of `document_id` and `message_id`, or a blank reason.",
            },
        ),
    )
    async def report_bounce(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        api_key: ApiKeyDep,
        data: Annotated[
            BounceReport,
            Body(
                description='E.g. `{"message_id": "<id.notification@example.org>", '
                '"reason": "550 5.1.1 user unknown"}`.'
            ),
        ],
    ) -> BounceResult:
        """Report a bounce of a notification email. Permanent (default): the email is marked
        failed, the sender gets `document.delivery_failed` and, unless the customer has read
        the document already, `document.print_required`. Idempotent: a repeat, or a document
        already delivered by print, answers `changed: false` and tells the sender nothing.
        `permanent: false` (a soft bounce) is only recorded."""
        result = await _intake(services).report(data)
        await record_key(
            request,
            services,
            api_key,
            "bounce.reported",
            document_id=result.document_id,
            details={
                "permanent": result.permanent,
                "changed": result.changed,
                "print_required": result.print_required,
                "by": "message_id" if data.message_id is not None else "document_id",
                "reason": for_sender(data.reason.strip())[:200],
            },
        )
        return result
