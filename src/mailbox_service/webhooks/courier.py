"""What the two webhook jobs do: fan an event out to endpoints, and deliver one delivery.

dispatch(event id): read the event, find the source's active endpoints subscribed to its
type, store one delivery per endpoint (its id is derived from the pair, so a second dispatch
of the same event stores nothing new), mark the event `dispatched`. The first endpoint's
delivery is attempted right there, in the dispatch job, and stored with its outcome: most
sources have one endpoint, and this saves a job, a claim, a read and a write per event (on two
shared cores, measured with bench/notify.py, that is what keeps webhooks from slowing email
down). Any further endpoints' deliveries are stored pending with a job each.

deliver(delivery id): claim the delivery (compare-and-set), check the endpoint is still
active, sign and POST the stored body, then record:
  2xx          delivered
  410          the receiver wants no more: the endpoint is disabled (reason recorded), the
               delivery failed; its other pending deliveries fail at their next attempt
  anything else, a timeout, a refused connection or a refused address (url_policy)
               retried after min_backoff * 2^(attempts-1), capped at max_backoff, until
               max_attempts; then failed
Each attempt is logged (`webhook.attempt`) and kept on the delivery (the last LOG_SIZE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import dramatiq

from mailbox_service.clock import utcnow
from mailbox_service.log import get_logger
from mailbox_service.observability import metrics, tracing
from mailbox_service.senders.events import WEBHOOK_QUEUE, object_id_of
from mailbox_service.settings import WebhookSettings
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.sender_events import BlockingSenderEventStore
from mailbox_service.storage.webhooks import (
    Attempt,
    BlockingWebhookDeliveryStore,
    BlockingWebhookEndpointStore,
    log_entry,
)
from mailbox_service.webhooks.deliveries import delivery_id as delivery_id_of
from mailbox_service.webhooks.deliveries import new_delivery
from mailbox_service.webhooks.sender import Answer, WebhookSender
from mailbox_service.webhooks.signing import payload, signed_headers

log = get_logger(__name__)

DELIVER_ACTOR = "deliver_webhook"
Outcome = Literal["delivered", "retry", "failed", "gone", "not_claimed"]


@dataclass(frozen=True)
class Backoff:
    max_attempts: int
    min_s: float
    max_s: float

    @classmethod
    def of(cls, settings: WebhookSettings) -> Backoff:
        return cls(settings.max_attempts, settings.min_backoff_s, settings.max_backoff_s)

    def delay(self, attempts: int) -> dt.timedelta:
        """After the `attempts`-th failed attempt."""
        exponent = min(max(attempts - 1, 0), 30)
        return dt.timedelta(seconds=min(self.max_s, self.min_s * 2**exponent))


class WebhookJobs:
    """Hands delivery ids to the `webhooks` queue (now, or after a backoff)."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def enqueue(self, delivery: str, delay: dt.timedelta | None = None) -> bool:
        try:
            options: dict[str, Any] = {}
            tracing.inject_into(options)
            message: dramatiq.Message[Any] = dramatiq.Message(
                queue_name=WEBHOOK_QUEUE,
                actor_name=DELIVER_ACTOR,
                args=(delivery,),
                kwargs={},
                options=options,
            )
            millis = max(0, int(delay.total_seconds() * 1000)) if delay else 0
            self.broker.enqueue(message, delay=millis or None)
        except Exception as exc:
            log.warning("webhook.enqueue_failed", delivery_id=delivery, error=type(exc).__name__)
            return False
        return True


@dataclass(frozen=True)
class Result:
    """What one attempt decided: the delivery's next state and what to store of it."""

    outcome: Outcome
    values: dict[str, Any]
    attempt: Attempt
    retry_in: dt.timedelta | None = None


class Courier:
    def __init__(
        self,
        *,
        events: BlockingSenderEventStore,
        endpoints: BlockingWebhookEndpointStore,
        deliveries: BlockingWebhookDeliveryStore,
        sender: WebhookSender,
        jobs: WebhookJobs,
        settings: WebhookSettings,
    ) -> None:
        self.events = events
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.sender = sender
        self.jobs = jobs
        self.backoff = Backoff.of(settings)
        # Long enough for the slowest attempt (connect + answer, each up to the timeout).
        self.lease = dt.timedelta(seconds=settings.timeout_s * 3 + 10)
        # The sweep dispatches an event again after this; a dispatch of an older event may be
        # a repeat, so it first looks which deliveries exist (a fresh one saves the read).
        self.repeat_after = dt.timedelta(seconds=settings.sweep_grace_s)

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, event_id: str) -> int:
        """Fan one event out; the number of deliveries it stored."""
        object_id = object_id_of(event_id)
        event = self.events.get(object_id) if object_id is not None else None
        if event is None or object_id is None:
            log.warning("webhook.event_missing", event_id=event_id)
            return 0
        body = payload(event)
        now = utcnow()
        stored = 0
        queued = []
        endpoints = self.endpoints.subscribed(event["source"], event["type"])
        # By the id's time, as the sweep picks events.
        if endpoints and now - object_id.generation_time > self.repeat_after:
            existing = self.deliveries.existing(
                [delivery_id_of(event_id, endpoint["_id"]) for endpoint in endpoints]
            )
            endpoints = [e for e in endpoints if delivery_id_of(event_id, e["_id"]) not in existing]
        for index, endpoint in enumerate(endpoints):
            delivery = new_delivery(
                event_id, endpoint["_id"], event["source"], event["type"], body, now
            )
            if index == 0:
                # Attempted before it is stored: its id is derived from (event, endpoint), so
                # a crash before the insert re-dispatches (the event is not marked yet) and
                # sends the same webhook-id again. One write instead of two.
                delivery["attempts"] = 1
                result = self._attempt(delivery, endpoint)
                if self.deliveries.insert(_recorded(delivery, result)):
                    stored += 1
                    self._follow_up(delivery["_id"], result)
                continue
            if self.deliveries.insert(delivery):  # else: a repeated dispatch; it has a job
                stored += 1
                queued.append(delivery["_id"])
        # Marked only once every delivery is stored: a crash before this re-dispatches (the
        # sweep), and the repeat inserts nothing it already has.
        self.events.mark_dispatched(object_id)
        for delivery_id in queued:
            self.jobs.enqueue(delivery_id)
        return stored

    # -- deliver --------------------------------------------------------------------------

    def deliver(self, delivery_id: str) -> Outcome:
        claimed = self.deliveries.claim(delivery_id, self.lease)
        if claimed is None:
            self._wait_for_retry(delivery_id)
            return "not_claimed"
        result = self._attempt(claimed, self.endpoints.get(claimed["endpoint_id"]))
        if self.deliveries.finish(claimed, result.values, result.attempt):
            self._follow_up(delivery_id, result)
        else:
            log.warning("webhook.claim_lost", delivery_id=delivery_id)
        return result.outcome

    def _attempt(self, delivery: Doc, endpoint: Doc | None) -> Result:
        """One attempt of a delivery (`attempts` counts it) to its endpoint as read."""
        delivery_id = delivery["_id"]
        attempts = int(delivery["attempts"])
        bound = log.bind(
            delivery_id=delivery_id,
            event_id=delivery["event_id"],
            endpoint_id=delivery["endpoint_id"],
            event_type=delivery["type"],
            attempt=attempts,
        )
        at = utcnow()
        if endpoint is None or endpoint["state"] != "active":
            reason = (endpoint or {}).get("disabled_reason") or "endpoint deleted"
            answer = Answer(None, f"endpoint disabled: {reason}", 0.0)
            bound.info("webhook.abandoned", error=answer.error)
            return _result("failed", "failed", answer, at)
        body = delivery["body"].encode()
        headers = signed_headers(endpoint["secret"], delivery_id, body, at)
        answer = self.sender.post(endpoint["url"], body, headers)
        bound.info(
            "webhook.attempt",
            status_code=answer.status_code,
            error=answer.error,
            ms=round(answer.seconds * 1000),
        )
        if answer.delivered:
            return _result("delivered", "delivered", answer, at)
        if answer.status_code == 410:
            reason = f"receiver answered 410 Gone at {at.isoformat()}"
            if self.endpoints.disable(endpoint["_id"], reason):
                bound.warning("webhook.endpoint_disabled", reason=reason)
            return _result("gone", "failed", answer, at)
        if attempts >= self.backoff.max_attempts:
            bound.warning("webhook.failed", attempts=attempts)
            return _result("failed", "failed", answer, at)
        delay = self.backoff.delay(attempts)
        return _result("retry", "pending", answer, at, retry_in=delay)

    def _follow_up(self, delivery_id: str, result: Result) -> None:
        """After the outcome is stored: count it, and queue the retry."""
        metrics.webhook_done("failed" if result.outcome == "gone" else result.outcome)
        if result.retry_in is not None:
            self.jobs.enqueue(delivery_id, result.retry_in)

    def _wait_for_retry(self, delivery_id: str) -> None:
        """A job that came before its delivery's `next_at` (another host's clock ahead of
        ours) is put back for the rest of the wait, rather than leaving it to the sweep."""
        waiting = self.deliveries.waiting_until(delivery_id)
        if waiting is not None:
            self.jobs.enqueue(delivery_id, waiting - utcnow())


def _result(
    outcome: Outcome,
    status: str,
    answer: Answer,
    at: dt.datetime,
    *,
    retry_in: dt.timedelta | None = None,
) -> Result:
    error = answer.error or (None if answer.delivered else f"HTTP {answer.status_code}")
    values: dict[str, Any] = {
        "status": status,
        "last_status_code": answer.status_code,
        "last_error": error,
        "next_at": at + retry_in if retry_in is not None else None,
    }
    if status == "delivered":
        values["delivered_at"] = at
    elif status == "failed":
        values["failed_at"] = at
    attempt = Attempt(
        at=at, status_code=answer.status_code, error=error, ms=round(answer.seconds * 1000)
    )
    return Result(outcome, values, attempt, retry_in)


def _recorded(delivery: Doc, result: Result) -> Doc:
    """A new delivery as its first attempt left it."""
    return {
        **delivery,
        **result.values,
        "updated_at": result.attempt.at,
        "log": [log_entry(result.attempt)],
    }
