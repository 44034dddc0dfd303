"""Services: the long-lived objects one process shares, built once from settings.

The API, the worker and the CLI each build one; nothing else holds global state.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker
from pymongo import AsyncMongoClient
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from mailbox_service.audit import AuditChain, AuditTrail, IntrusionAlerts
from mailbox_service.auth.tokens import TokenVerifier
from mailbox_service.cursors import CursorSigner
from mailbox_service.doctypes import DocumentTypeRegistry, load_registry
from mailbox_service.evidence.service import EvidenceKey
from mailbox_service.ingestion.service import IngestService
from mailbox_service.lifecycle.legal_holds import LegalHolds
from mailbox_service.mailbox.service import MailboxService
from mailbox_service.notifications.broker import make_broker
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.ratelimit import Budgets, RateLimiter, limiter_redis
from mailbox_service.realtime.emitter import RealtimeEmitter
from mailbox_service.senders.event_log import EventLog
from mailbox_service.settings import Settings
from mailbox_service.storage.accounts import AccountStore
from mailbox_service.storage.api_keys import ApiKeyStore
from mailbox_service.storage.audit_log import AuditLogStore
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.document_status import DocumentStatusStore
from mailbox_service.storage.documents import DocumentStore
from mailbox_service.storage.holds import HoldStore
from mailbox_service.storage.mongo import Collections, Doc, connect
from mailbox_service.storage.outbox import AsyncOutbox
from mailbox_service.storage.reminders import ReminderStore
from mailbox_service.storage.sender_events import SenderEventStore
from mailbox_service.storage.tombstones import TombstoneStore
from mailbox_service.webhooks.operations import WebhookOperations


@dataclass
class Services:
    settings: Settings
    registry: DocumentTypeRegistry
    mongo: AsyncMongoClient[Doc]
    database: Collections
    documents: DocumentStore
    accounts: AccountStore
    api_keys: ApiKeyStore
    blobs: BlobStore
    broker: RedisBroker
    queue: NotificationQueue
    redis: aioredis.Redis
    ingest: IngestService
    portal_tokens: TokenVerifier
    realtime: RealtimeEmitter
    mailbox: MailboxService
    cursors: CursorSigner
    audit: AuditTrail
    alerts: IntrusionAlerts
    rate_limits: Budgets
    evidence_key: EvidenceKey
    sender_events: EventLog
    outbox: AsyncOutbox
    """The notification outbox for operators (stats, list, resend); the worker has its own."""
    document_status: DocumentStatusStore
    """Senders' lookups and changes of their documents (status, print fallback, bounces)."""
    event_store: SenderEventStore
    """Stored sender events (the change feed reads them; `sender_events` writes them)."""
    audit_log: AuditLogStore
    reminders: ReminderStore
    webhooks: WebhookOperations
    holds: HoldStore
    tombstones: TombstoneStore
    legal_holds: LegalHolds
    """Operators' legal holds on documents and accounts (the admin routes and `hold`)."""
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        registry: DocumentTypeRegistry | None = None,
        broker: RedisBroker | None = None,
    ) -> Services:
        registry = registry or load_registry()
        mongo = connect(settings.mongo)
        collections = Collections.of(mongo, settings.mongo.database)
        documents = DocumentStore(collections)
        accounts = AccountStore(collections)
        blobs = BlobStore(settings.s3)
        broker = broker or make_broker(settings.redis)
        queue = NotificationQueue(broker)
        realtime = RealtimeEmitter(settings.redis.url)
        cursors = CursorSigner.from_settings(settings.auth)
        event_store = SenderEventStore(collections)
        sender_events = EventLog(event_store, broker)
        redis = aioredis.Redis.from_url(
            settings.redis.url,
            socket_connect_timeout=2,
            socket_timeout=5,
            # A pooled connection outlives a Redis restart; the first command on it meets a
            # closed socket. from_url gives connections no retry, so one retry on a fresh
            # connection is asked for here.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[RedisConnectionError],
        )
        return cls(
            settings=settings,
            registry=registry,
            mongo=mongo,
            database=collections,
            documents=documents,
            accounts=accounts,
            api_keys=ApiKeyStore(collections, cache_seconds=settings.auth.api_key_cache_s),
            blobs=blobs,
            broker=broker,
            queue=queue,
            redis=redis,
            ingest=IngestService(registry, documents, accounts, blobs, queue),
            portal_tokens=TokenVerifier(settings.auth),
            realtime=realtime,
            mailbox=MailboxService(documents, accounts, cursors, realtime, sender_events),
            cursors=cursors,
            audit=AuditTrail(AuditChain(collections), settings.audit),
            alerts=IntrusionAlerts(redis, settings.alert),
            rate_limits=Budgets(settings.rate, RateLimiter(limiter_redis(settings.redis.url))),
            evidence_key=EvidenceKey(settings.evidence),
            sender_events=sender_events,
            outbox=AsyncOutbox.on(collections, lease=dt.timedelta(seconds=settings.notify.lease_s)),
            document_status=DocumentStatusStore(collections),
            event_store=event_store,
            audit_log=AuditLogStore(collections),
            reminders=ReminderStore(collections),
            webhooks=WebhookOperations(collections, broker, settings.webhook),
            holds=HoldStore(collections),
            tombstones=TombstoneStore(collections),
            legal_holds=LegalHolds(collections, blobs, registry),
        )

    async def close(self) -> None:
        await self.audit.close()  # first: it writes to MongoDB
        await self.mongo.close()
        await self.redis.aclose()
        await self.realtime.close()
        await self.rate_limits.close()
        self.broker.close()
