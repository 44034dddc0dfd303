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
from mailbox_service.lifecycle.legal_holds import LegalHolds
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
from mailbox_service.storage.holds import HoldStore
from mailbox_service.storage.mongo import ping
from mailbox_service.storage.tombstones import TombstoneStore
from mailbox_service.webhooks.controller import WebhookServices
from mailbox_service.wiring.services import Services


def notification_admin(services: Services) -> NotificationAdmin:
    """The operators' outbox view, for the admin routes and `mailbox-service notifications`."""
    return NotificationAdmin(services.queue, services.outbox, services.cursors)


def controller_services(services: Services, *, demo_portal: bool) -> dict[type, object]:
    """{dependency type: instance} for every controller the app mounts."""
    s = services
    built: list[object] = [
        ReadinessChecks(
            {
                "mongodb": partial(ping, s.mongo, s.settings.mongo.database),
                "minio": s.blobs.check,
                "redis": s.redis.ping,
            }
        ),
        IngestServices(s.ingest, s.registry, s.settings),
        MailboxServices(s.mailbox, s.registry, s.blobs, s.settings, s.audit),
        AdminNotificationsServices(notification_admin(s), s.audit),
        AuditServices(AuditQuery(s.audit_log, s.cursors)),
        HoldServices(LegalHolds(s.collections, s.blobs, s.registry), s.audit),
        BounceServices(
            BounceIntake(
                s.document_status,
                s.sender_events,
                PrintFallback(s.document_status, s.sender_events),
            ),
            s.audit,
        ),
        WebhookServices(s.webhooks, s.audit),
        SenderServices(
            SenderDocuments(s.document_status),
            StatusUpdates(s.document_status, s.registry, s.sender_events, s.realtime),
            ChangeFeed(s.event_store),
            s.audit,
        ),
        EvidenceServices(
            EvidenceService(
                s.documents,
                HoldStore(s.collections),
                TombstoneStore(s.collections),
                s.evidence_key,
            ),
            s.audit,
        ),
    ]
    if demo_portal:
        # Only mounted in demo mode; the renderer digests the static files once.
        built.append(PortalServices(PageRenderer(s.registry), s.settings))
    return {type(each): each for each in built}
