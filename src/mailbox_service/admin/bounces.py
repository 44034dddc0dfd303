"""HTTP door of bounce intake: `POST /v1/admin/bounces`, for API keys with `admin` scope.

For relays that report a bounce after accepting the email (a DSN, a provider's webhook):
an operator's integration posts it here. What a bounce does: senders/bounces.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_key
from mailbox_service.auth.providers import ApiKeyDep, CredentialStores, provide_admin_key
from mailbox_service.senders.bounces import (
    ONE_EMAIL,
    BounceIntake,
    BounceReport,
    BounceResult,
    decode_report,
)
from mailbox_service.senders.email_outcomes import for_sender
from mailbox_service.server.deps import provided
from mailbox_service.server.openapi import documented, errors, struct_components


@dataclass(frozen=True, slots=True)
class BounceServices:
    """What the bounce route uses, built once by the composition root (wiring/)."""

    intake: BounceIntake
    audit: AuditTrail
    credentials: CredentialStores


BounceServicesDep = NamedDependency[BounceServices]


def _bounce_body(_: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    refs, components = struct_components(BounceReport)
    schema = {"allOf": [refs[0]], **ONE_EMAIL}
    body = {
        "required": True,
        "description": 'Exactly one of `document_id` and `message_id`, e.g. `{"message_id": '
        '"<id.notification@example.org>", "reason": "550 5.1.1 user unknown"}`.',
        "content": {"application/json": {"schema": schema}},
    }
    return body, components


class AdminBouncesController(Controller):
    path = "/v1/admin/bounces"
    tags = ["admin"]
    dependencies = {"services": provided(BounceServices), "api_key": Provide(provide_admin_key)}
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
                422: "A field is invalid (`error.field` names it), or neither or both of "
                "`document_id` and `message_id` are given.",
            },
        ),
        opt=documented(request_body=_bounce_body),
    )
    async def report_bounce(
        self,
        request: Request[Any, Any, Any],
        services: BounceServicesDep,
        api_key: ApiKeyDep,
        data: Annotated[dict[str, Any], Body(description="The bounce (see the schema).")],
    ) -> BounceResult:
        """Report a bounce of a notification email. Permanent (default): the email is marked
        failed, the sender gets `document.delivery_failed` and, unless the customer has read
        the document already, `document.print_required`. Idempotent: a repeat, or a document
        already delivered by print, answers `changed: false` and tells the sender nothing.
        `permanent: false` (a soft bounce) is only recorded."""
        report = decode_report(data)
        result = await services.intake.report(report)
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
                "by": "message_id" if isinstance(report.message_id, str) else "document_id",
                "reason": for_sender(report.reason.strip())[:200],
            },
        )
        return result
