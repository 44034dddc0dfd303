"""What each controller receives: one typed dependency apiece, built from the process's
Services once at start-up (`server/deps.py` hands them to the handlers).

A controller's dependency type lives beside the controller and lists exactly what its routes
use; building it here keeps every domain package ignorant of the whole bag.
"""

from __future__ import annotations

from functools import partial

from mailbox_service.admin.bounces import BounceServices
from mailbox_service.admin.controller import AdminNotificationsServices
from mailbox_service.admin.holds import HoldServices
from mailbox_service.admin.service import NotificationAdmin
from mailbox_service.audit.controller import AuditServices
from mailbox_service.audit.query import AuditQuery
from mailbox_service.evidence.controller import EvidenceServices
from mailbox_service.evidence.service import EvidenceService
from mailbox_service.ingestion.controller import IngestServices
from mailbox_service.mailbox.controller import MailboxServices
from mailbox_service.portal.controller import PortalServices
from mailbox_service.portal.pages import PageRenderer
from mailbox_service.senders.bounces import BounceIntake
from mailbox_service.senders.controller import SenderServices
from mailbox_service.senders.feed import ChangeFeed
from mailbox_service.senders.lookup import SenderDocuments
from mailbox_service.senders.print_fallback import PrintFallback
from mailbox_service.senders.status_updates import StatusUpdates
from mailbox_service.server.health import ReadinessChecks
from mailbox_service.storage.mongo import ping
from mailbox_service.webhooks.controller import WebhookServices
from mailbox_service.wiring.services import Services


def notification_admin(services: Services) -> NotificationAdmin:
    """The operators' outbox view, for the admin routes and `mailbox-service notifications`."""
    return NotificationAdmin(services.queue, services.outbox, services.cursors)


def controller_services(services: Services, *, demo_portal: bool) -> dict[type, object]:
    """{dependency type: instance} for every controller the app mounts.

    `credentials` is the Services object itself, seen through `auth.providers.CredentialStores`:
    the credential providers read its stores on each request (a test swaps the rate limits).
    """
    s = services
    built: list[object] = [
        ReadinessChecks(
            {
                "mongodb": partial(ping, s.mongo, s.settings.mongo.database),
                "minio": s.blobs.check,
                "redis": s.redis.ping,
            }
        ),
        IngestServices(s.ingest, s.registry, s.settings, credentials=s),
        MailboxServices(s.mailbox, s.registry, s.blobs, s.settings, s.audit, credentials=s),
        AdminNotificationsServices(notification_admin(s), s.audit, credentials=s),
        AuditServices(AuditQuery(s.audit_log, s.cursors), credentials=s),
        HoldServices(s.legal_holds, s.audit, credentials=s),
        BounceServices(
            BounceIntake(
                s.document_status,
                s.sender_events,
                PrintFallback(s.document_status, s.sender_events),
            ),
            s.audit,
            credentials=s,
        ),
        WebhookServices(s.webhooks, s.audit, credentials=s),
        SenderServices(
            SenderDocuments(s.document_status),
            StatusUpdates(s.document_status, s.registry, s.sender_events, s.realtime),
            ChangeFeed(s.event_store),
            s.audit,
            credentials=s,
        ),
        EvidenceServices(
            EvidenceService(
                s.documents,
                s.holds,
                s.tombstones,
                s.evidence_key,
            ),
            s.audit,
            credentials=s,
        ),
    ]
    if demo_portal:
        # Only mounted in demo mode; the renderer digests the static files once.
        built.append(PortalServices(PageRenderer(s.registry), s.settings))
    return {type(each): each for each in built}
