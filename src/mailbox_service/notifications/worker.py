"""The worker process: dramatiq consumers for both channels plus the outbox sweep.

`run()` starts `processes` OS processes (one runs in-process when it is 1), each with its own
broker, sync MongoDB client and `threads` dramatiq worker threads. Process 0 also runs the
sweep thread, the periodic runs (purge; reminders and acknowledgement: senders/periodic.py)
and makes sure the outbox indexes exist. SIGTERM/SIGINT stop everything gracefully:
jobs in progress finish (up to `stop_timeout`), unstarted ones stay in Redis.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import dramatiq
from pymongo import MongoClient
from pymongo.database import Database

from mailbox_service.doctypes import load_registry
from mailbox_service.lifecycle.schedule import purge_thread
from mailbox_service.log import configure_logging, get_logger
from mailbox_service.mail.email import EmailRenderer
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.notifications.actors import declare_actors
from mailbox_service.notifications.broker import install_broker
from mailbox_service.notifications.channels import CHANNELS, QUEUE
from mailbox_service.notifications.delivery import Deliverer
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.notifications.sweep import OutboxSweep, sweep_thread
from mailbox_service.observability import exposition, metrics, tracing
from mailbox_service.observability.worker_endpoint import serve_worker_metrics
from mailbox_service.paths import templates_dir
from mailbox_service.periodic import PeriodicThread
from mailbox_service.realtime.emitter import BlockingRealtimeEmitter
from mailbox_service.senders.email_outcomes import EmailOutcomes
from mailbox_service.senders.event_log import BlockingEventLog
from mailbox_service.senders.events import WEBHOOK_QUEUE
from mailbox_service.senders.periodic import SenderPasses, sender_passes_thread
from mailbox_service.senders.print_fallback import BlockingPrintFallback
from mailbox_service.settings import Settings, load_settings
from mailbox_service.storage.blocking import blocking_database, connect_blocking
from mailbox_service.storage.document_status import BlockingDocumentStatusStore
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.outbox import Outbox
from mailbox_service.storage.sender_events import BlockingSenderEventStore
from mailbox_service.webhooks.runtime import WebhookRuntime

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    processes: int = 1
    threads: int = 8
    queues: tuple[str, ...] = (*(QUEUE[c] for c in CHANNELS), WEBHOOK_QUEUE)
    sweep: bool = True


def email_outcomes(db: Database[Doc], broker: dramatiq.Broker) -> EmailOutcomes:
    """What tells senders the email outcome: sender events, and the print fallback."""
    events = BlockingEventLog(BlockingSenderEventStore(db), broker)
    return EmailOutcomes(events, BlockingPrintFallback(BlockingDocumentStatusStore(db), events))


@dataclass
class WorkerRuntime:
    """Everything one worker process holds; built once, closed on shutdown."""

    settings: Settings
    broker: dramatiq.Broker
    mongo: MongoClient[Doc]
    outbox: Outbox
    queue: NotificationQueue
    deliverer: Deliverer
    emitter: BlockingRealtimeEmitter
    smtp: SmtpSender

    @classmethod
    def build(cls, settings: Settings, broker: dramatiq.Broker, threads: int) -> WorkerRuntime:
        mongo = connect_blocking(settings.mongo, pool_size=threads + 2)
        db = blocking_database(mongo, settings.mongo.database)
        outbox = Outbox.on(db, lease=dt.timedelta(seconds=settings.notify.lease_s))
        queue = NotificationQueue(broker)
        emitter = BlockingRealtimeEmitter(settings.redis.url)
        smtp = SmtpSender(settings.smtp)
        renderer = EmailRenderer(
            templates_dir() / "email",
            portal_url=settings.portal_url,
            default_locale=settings.notify.default_locale,
        )
        deliverer = Deliverer(
            outbox=outbox,
            queue=queue,
            registry=load_registry(),
            renderer=renderer,
            smtp=smtp,
            emitter=emitter,
            settings=settings,
            outcomes=email_outcomes(db, broker),
        )
        return cls(settings, broker, mongo, outbox, queue, deliverer, emitter, smtp)

    def sweep(self) -> OutboxSweep:
        notify = self.settings.notify
        return OutboxSweep(
            self.outbox,
            self.queue,
            grace=dt.timedelta(seconds=notify.sweep_grace_s),
        )

    def close(self) -> None:
        self.emitter.close()
        self.mongo.close()


@contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (the handlers are restored afterwards)."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("worker.stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def install_observability(settings: Settings, broker: dramatiq.Broker) -> None:
    """Metrics and traces for this process; jobs continue the trace of whoever queued them."""
    metrics.configure(settings.metrics.enabled)
    if tracing.configure(settings.otel, "worker"):
        broker.add_middleware(tracing.TraceMessages())


def periodic_jobs(
    settings: Settings, runtime: WorkerRuntime, broker: dramatiq.Broker
) -> list[PeriodicThread]:
    """What one worker process (the one with the sweep) runs besides its jobs."""
    jobs = [sweep_thread(runtime.sweep(), settings.notify.sweep_interval_s)]
    # The daily purge, reminders and the acknowledgement pass: a lease in MongoDB each keeps
    # them to one worker at a time (storage/leases.py).
    if settings.retention.purge_interval_s > 0:
        jobs.append(purge_thread(settings, load_registry()))
    passes = SenderPasses(settings, load_registry(), broker)
    if passes.passes:
        jobs.append(sender_passes_thread(passes))
    return jobs


def serve_process(
    settings: Settings, options: WorkerOptions, index: int, *, serve_metrics: bool = True
) -> None:
    """One worker process until SIGTERM/SIGINT; `serve_metrics` opens the metrics port here
    (a supervisor of several processes serves it for all of them instead)."""
    with _stop_signals() as stop:
        # The broker is installed before any actor is declared: the one global of a process.
        broker = install_broker(settings.redis)
        install_observability(settings, broker)
        runtime = WorkerRuntime.build(settings, broker, options.threads)
        metrics_server = (
            serve_worker_metrics(settings.metrics, runtime.outbox) if serve_metrics else None
        )
        declare_actors(broker, runtime.deliverer, settings.notify)
        runs_sweep = options.sweep and index == 0
        if runs_sweep:
            runtime.outbox.ensure_indexes()
        broker.emit_after("process_boot")
        # Webhook jobs run on threads of their own (webhooks/runtime.py); an empty set would
        # mean "every queue" to dramatiq, so a webhooks-only worker starts none here.
        notify_queues = set(options.queues) - {WEBHOOK_QUEUE}
        worker = (
            dramatiq.Worker(
                broker,
                queues=notify_queues,
                worker_threads=options.threads,
                # An idle queue is polled at most this often (ms): bounds the pick-up latency.
                worker_timeout=200,
            )
            if notify_queues
            else None
        )
        if worker:
            worker.start()
        webhooks = (
            WebhookRuntime.start(settings, broker, runtime.mongo, sweep=runs_sweep)
            if WEBHOOK_QUEUE in options.queues
            else None
        )
        periodic = periodic_jobs(settings, runtime, broker) if runs_sweep else []
        for thread in periodic:
            thread.start()
        log.info(
            "worker.started",
            process=index,
            threads=options.threads,
            queues=sorted(options.queues),
            sweep=runs_sweep,
        )
        stop.wait()
        for thread in periodic:
            thread.stop(join_timeout_s=30)
        stop_timeout_ms = int((settings.smtp.timeout_s * 2 + 5) * 1000)
        if worker:
            worker.stop(timeout=stop_timeout_ms)
        if webhooks:
            webhooks.stop()
        if metrics_server:
            metrics_server.stop()
        broker.close()
        runtime.close()
        tracing.shutdown()
        log.info("worker.stopped", process=index)


def _child_main(options: WorkerOptions, index: int) -> None:
    settings = load_settings()
    configure_logging(settings.log_format, enrich=(tracing.add_trace_ids,))
    serve_process(settings, options, index, serve_metrics=False)


def run(settings: Settings, options: WorkerOptions) -> None:
    """Serve in this process (processes == 1) or supervise `processes` children."""
    if options.processes == 1:
        serve_process(settings, options, 0)
        return
    context = multiprocessing.get_context("spawn")
    # Before the children start: each writes its metrics where this process adds them up.
    metrics_dir = exposition.prepare_multiprocess("worker")
    metrics_mongo = connect_blocking(settings.mongo, pool_size=2)
    metrics_outbox = Outbox.on(
        blocking_database(metrics_mongo, settings.mongo.database),
        lease=dt.timedelta(seconds=settings.notify.lease_s),
    )
    metrics_server = serve_worker_metrics(settings.metrics, metrics_outbox)
    children: dict[int, multiprocessing.process.BaseProcess] = {}

    def start(index: int) -> None:
        child = context.Process(
            target=_child_main, args=(options, index), name=f"worker-{index}", daemon=False
        )
        child.start()
        children[index] = child

    with _stop_signals() as stop:
        for index in range(options.processes):
            start(index)
        while not stop.wait(1.0):
            for index, child in list(children.items()):
                if not child.is_alive():
                    log.warning("worker.process_died", process=index, exitcode=child.exitcode)
                    if child.pid is not None:
                        exposition.child_died(child.pid)
                    time.sleep(1.0)
                    start(index)
        for child in children.values():
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: each child stops gracefully
        for child in children.values():
            child.join(timeout=settings.smtp.timeout_s * 2 + 10)
            if child.is_alive():
                child.kill()
    if metrics_server:
        metrics_server.stop()
    metrics_mongo.close()
    exposition.remove_multiprocess_dir(metrics_dir)
