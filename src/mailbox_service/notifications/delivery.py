"""Deliverer: what one job does for one document and channel, from claim to recorded outcome.

claim (compare-and-set in the outbox) → shape the notification with the type's plugin → hand
it to SMTP or to Socket.IO via Redis → record `sent`, a retry with backoff, `failed` or `skipped`.
A job that cannot claim its channel does nothing: it is a duplicate (the sweep and a retry can
both enqueue the same document), early (a retry is not due yet), or already done.
The real-time channel skips the claim's write (`channels.LEASED`): it reads the document, emits,
and records the outcome only if nobody changed the channel meanwhile; a race emits twice.
The email channel's final outcome also reaches the document's sender (senders/email_outcomes.py):
only from the worker whose outcome write matched.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mailbox_service.clock import utcnow
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.errors import MailboxError
from mailbox_service.log import get_logger
from mailbox_service.mail.email import (
    EmailRenderer,
    compose_wire,
    envelope_sender,
    view_of,
)
from mailbox_service.mail.failures import (
    DeliveryFailure,
    NotApplicable,
    PermanentFailure,
    RelayRefused,
    TransientFailure,
)
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.notifications.channels import LEASED, Channel
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.process import worker_name
from mailbox_service.realtime.emitter import BlockingRealtimeEmitter
from mailbox_service.senders.email_outcomes import EmailOutcomes, FailureCause
from mailbox_service.settings import NotifySettings, Settings
from mailbox_service.storage.outbox import Claim, Outbox

log = get_logger(__name__)

Outcome = Literal["sent", "retry", "failed", "skipped", "not_claimed"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    min_backoff_ms: int
    max_backoff_ms: int

    @classmethod
    def of(cls, settings: NotifySettings) -> RetryPolicy:
        return cls(settings.max_attempts, settings.min_backoff_ms, settings.max_backoff_ms)

    def delay_ms(self, attempts: int) -> int:
        """Backoff after the `attempts`-th failed attempt: min, 2*min, 4*min ... capped at max."""
        exponent = min(max(attempts - 1, 0), 30)
        return int(min(self.max_backoff_ms, self.min_backoff_ms * 2**exponent))


class Deliverer:
    def __init__(
        self,
        *,
        outbox: Outbox,
        queue: NotificationQueue,
        registry: DocumentTypeRegistry,
        renderer: EmailRenderer,
        smtp: SmtpSender,
        emitter: BlockingRealtimeEmitter,
        settings: Settings,
        outcomes: EmailOutcomes | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.outbox = outbox
        self.queue = queue
        self.registry = registry
        self.renderer = renderer
        self.smtp = smtp
        self.emitter = emitter
        self.settings = settings
        self.policy = RetryPolicy.of(settings.notify)
        self.outcomes = outcomes
        """Tells senders the email's outcome; None only in tests of the delivery alone."""
        self.clock = clock

    # -- the two channels -----------------------------------------------------------------

    def deliver_email(self, document_id: str) -> Outcome:
        return self._run(document_id, "email", self._send_email)

    def deliver_realtime(self, document_id: str) -> Outcome:
        return self._run(document_id, "realtime", self._emit_created)

    def _send_email(self, claim: Claim) -> dict[str, Any]:
        doc = claim.document
        delivery = doc.get("delivery") or {}
        if delivery.get("mode") == "print":
            raise NotApplicable(f"delivery is print: {delivery.get('reason') or 'not digital'}")
        address = delivery.get("email")
        if not address:
            raise NotApplicable(
                "no email address: the document has no recipient.email and the account has no email"
            )
        try:
            doctype = self.registry.get(doc["type"])
        except MailboxError as exc:  # the type's plugin is no longer installed
            raise PermanentFailure(exc.message) from exc
        recipient_name = (doc.get("recipient") or {}).get("name")
        rendered = self.renderer.render(
            doctype, view_of(doc), locale=delivery.get("locale"), recipient_name=recipient_name
        )
        smtp = self.settings.smtp
        message = compose_wire(
            rendered,
            sender=smtp.sender,
            recipient=address,
            recipient_name=recipient_name,
            document_id=claim.document_id,
            account_id=doc["account_id"],
            portal_url=self.settings.portal_url,
            now=self.clock(),
        )
        reply = self.smtp.send(
            message.data, envelope_from=envelope_sender(smtp.sender), recipient=address
        )
        return {"message_id": message.message_id, "locale": rendered.locale, "relay_reply": reply}

    def _emit_created(self, claim: Claim) -> dict[str, Any]:
        try:
            self.emitter.emit_created(claim.document)
        except MailboxError as exc:
            raise TransientFailure(exc.message) from exc
        except OSError as exc:
            raise TransientFailure(f"redis: {type(exc).__name__}: {exc}") from exc
        return {}

    # -- claim, act, record ---------------------------------------------------------------

    def _run(
        self, document_id: str, channel: Channel, act: Callable[[Claim], dict[str, Any]]
    ) -> Outcome:
        started = time.perf_counter()
        if LEASED[channel]:
            claim = self.outbox.claim(document_id, channel, worker_name())
        else:
            claim = self.outbox.attempt(document_id, channel)
        claimed = time.perf_counter()
        if claim is None:
            log.debug("notification.not_claimed", document_id=document_id, channel=channel)
            return "not_claimed"
        bound = log.bind(document_id=document_id, channel=channel, attempt=claim.attempts)
        if claim.taken_over_from:
            bound.warning("notification.lease_taken_over", previous_worker=claim.taken_over_from)
        if claim.attempts > self.policy.max_attempts:
            error = f"gave up after {self.policy.max_attempts} attempts"
            if claim.taken_over_from:
                error += (
                    f"; the last one's worker ({claim.taken_over_from}) stopped without "
                    "recording an outcome (crashed, or slower than notify.lease_s)"
                )
            if self._record(claim, self.outbox.failed(claim, error)):
                self._tell_failed(claim, error, "notification_failed")
            bound.warning("notification.failed", error=error)
            return "failed"
        try:
            extra = act(claim)
        except NotApplicable as skip:
            self._record(claim, self.outbox.skipped(claim, skip.reason))
            bound.info("notification.skipped", reason=skip.reason)
            return "skipped"
        except DeliveryFailure as failure:
            return self._failed(claim, failure, bound)
        except Exception as exc:  # a bug or an unforeseen error: retried like a transient one
            bound.exception("notification.unexpected_error")
            return self._failed(claim, TransientFailure(f"{type(exc).__name__}: {exc}"), bound)
        delivered = time.perf_counter()
        if self._record(claim, self.outbox.sent(claim, **extra)):
            self._tell_delivered(claim)
        # Where the time goes (the bench adds these up to name its bottleneck).
        timings = {
            "claim_ms": round((claimed - started) * 1000, 2),
            "deliver_ms": round((delivered - claimed) * 1000, 2),
            "record_ms": round((time.perf_counter() - delivered) * 1000, 2),
        }
        bound.info("notification.sent", **extra, **timings)
        return "sent"

    def _failed(self, claim: Claim, failure: DeliveryFailure, bound: Any) -> Outcome:
        if failure.permanent or claim.attempts >= self.policy.max_attempts:
            if self._record(claim, self.outbox.failed(claim, failure.message)):
                refused = isinstance(failure, RelayRefused)
                cause: FailureCause = "relay_refused" if refused else "notification_failed"
                self._tell_failed(claim, failure.message, cause)
            bound.warning("notification.failed", error=failure.message, permanent=failure.permanent)
            return "failed"
        delay = self.policy.delay_ms(claim.attempts)
        next_at = self.clock() + dt.timedelta(milliseconds=delay)
        self._record(claim, self.outbox.retry_at(claim, failure.message, next_at))
        # If Redis is down too, the status stays pending and the sweep enqueues it later.
        self.queue.enqueue_later(claim.document_id, claim.channel, delay)
        bound.info("notification.retry", error=failure.message, delay_ms=delay)
        return "retry"

    def _tell_delivered(self, claim: Claim) -> None:
        if self.outcomes is not None and claim.channel == "email":
            self.outcomes.delivered(claim.document, self.clock())

    def _tell_failed(self, claim: Claim, error: str, cause: FailureCause) -> None:
        if self.outcomes is not None and claim.channel == "email":
            self.outcomes.failed(claim.document, error, cause)

    @staticmethod
    def _record(claim: Claim, recorded: bool) -> bool:
        """Log a write that did not match; True when ours did (we tell the sender then)."""
        if not recorded and not claim.leased:
            # Another worker delivered it too and recorded first: a harmless duplicate.
            log.info("notification.duplicate", document_id=claim.document_id, channel=claim.channel)
        elif not recorded:
            # Our lease ran out and another worker took the job over: it records the outcome.
            log.warning(
                "notification.lease_lost", document_id=claim.document_id, channel=claim.channel
            )
        return recorded
