"""Helpers for notification tests: the SMTP capture's maildir, a real worker process, polling,
and an in-process Deliverer wired like the worker's.

The stack's SMTP capture writes one `.eml` per accepted message into MAILBOX_STACK_MAILDIR,
named `<arrival ns>-<pid>-<seq>.eml`; `Maildir` reads only files newer than its creation, so
mail from earlier tests (or sessions, the stack is kept) never counts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
from dramatiq import Message
from dramatiq.brokers.stub import StubBroker
from pymongo.collection import Collection

from app_fixtures import invoice_metadata, sample_pdf, stop_process
from mailbox_service.clock import utcnow
from mailbox_service.doctypes import load_registry
from mailbox_service.ingestion.schemas import convert_metadata
from mailbox_service.ingestion.upload import IncomingFile
from mailbox_service.mail.email import EmailRenderer
from mailbox_service.mail.smtp import SmtpSender
from mailbox_service.notifications.delivery import Deliverer
from mailbox_service.notifications.queue import NotificationQueue
from mailbox_service.paths import templates_dir
from mailbox_service.realtime.emitter import BlockingRealtimeEmitter
from mailbox_service.settings import Settings
from mailbox_service.storage.mongo import Doc
from mailbox_service.storage.outbox import Outbox
from mailbox_service.wiring.services import Services

T = TypeVar("T")

# What the worker subprocess runs with on top of the test env: short leases and SMTP timeouts so
# crash recovery is quick, and enough attempts to outlast an SMTP restart.
WORKER_ENV = {
    "MAILBOX_NOTIFY_LEASE_S": "5",
    "MAILBOX_NOTIFY_MAX_ATTEMPTS": "12",
    "MAILBOX_SMTP_TIMEOUT_S": "3",
}


class Maildir:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(os.environ["MAILBOX_STACK_MAILDIR"])
        self.since_ns = time.time_ns()
        self._parsed: dict[str, EmailMessage] = {}

    def messages(self) -> list[EmailMessage]:
        """Every message that arrived since this Maildir was made, oldest first."""
        found = []
        for name in sorted(os.listdir(self.path)):
            if not name.endswith(".eml") or int(name.split("-", 1)[0]) < self.since_ns:
                continue
            if name not in self._parsed:
                raw = (self.path / name).read_bytes()
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                self._parsed[name] = parsed
            found.append(self._parsed[name])
        return found

    def for_document(self, document_id: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["X-Mailbox-Document-Id"] == document_id]


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text body, HTML body) of a multipart/alternative notification."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None, "expected a text part"
    assert html is not None, "expected an HTML part"
    return str(text.get_content()), str(html.get_content())


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    within: float = 20,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll `probe` until `check` holds for its value; fail with the last value seen."""
    deadline = time.monotonic() + within
    value = await probe()
    while not check(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def channel_state(services: Services, document_id: str, channel: str) -> dict[str, Any]:
    doc = await services.documents.record(document_id)
    assert doc is not None, f"document {document_id} is not stored"
    state: dict[str, Any] = doc["notifications"][channel]
    return state


async def wait_status(
    services: Services, document_id: str, channel: str, status: str, within: float = 20
) -> dict[str, Any]:
    return await eventually(
        lambda: channel_state(services, document_id, channel),
        lambda state: state["status"] == status,
        within=within,
        what=f"{channel} of {document_id} to be {status}",
    )


async def wait_mail(
    maildir: Maildir, document_id: str, count: int = 1, within: float = 20
) -> list[EmailMessage]:
    async def probe() -> list[EmailMessage]:
        return maildir.for_document(document_id)

    return await eventually(
        probe,
        lambda found: len(found) >= count,
        within=within,
        what=f"{count} email(s) for {document_id}",
    )


class WorkerProcess:
    """`mailbox-service worker` as a real subprocess with the test environment."""

    def __init__(
        self,
        log_dir: Path,
        *,
        threads: int = 4,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.log = log_dir / f"worker-{time.time_ns()}.log"
        self.threads = threads
        self.env = {**os.environ, **WORKER_ENV, **(extra_env or {})}
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> WorkerProcess:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mailbox_service",
                    "worker",
                    "--processes",
                    "1",
                    "--threads",
                    str(self.threads),
                    *self.args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + timeout
        while b"worker.started" not in self.log.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, exactly like a crash or the OOM killer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def store_document(
    services: Services, account_id: str, *, notify: bool = True, **overrides: Any
) -> dict[str, Any]:
    """Ingest an invoice in-process (the same pipeline as HTTP) and return the stored document."""
    pdf = sample_pdf()
    incoming = IncomingFile(
        data=io.BytesIO(pdf),
        filename="invoice.pdf",
        size=len(pdf),
        sha256=hashlib.sha256(pdf).hexdigest(),
        content_type="application/pdf",
    )
    metadata = convert_metadata(invoice_metadata(account_id, **overrides))
    outcome = await services.ingest.accept(metadata, incoming, source="notify-tests", notify=notify)
    return outcome.document


async def pending_email(
    services: Services, documents: Collection[Doc], account: str, address: str | None = None
) -> str:
    """An ingested document, copied into `documents` (a test module's own database, out of
    reach of any worker's sweep) with email `pending`."""
    doc = await store_document(services, account, notify=False)
    doc["notifications"]["email"] = {
        "status": "pending",
        "attempts": 0,
        "error": None,
        "reason": None,
        "at": utcnow(),
    }
    if address is not None:
        doc["delivery"]["email"] = address
    await asyncio.to_thread(documents.insert_one, doc)
    return str(doc["_id"])


async def make_pending(services: Services, document_id: str, channel: str, **state: Any) -> None:
    """Put a channel back to a fresh `pending` without enqueueing anything (no worker sees it
    unless the test hands it over)."""
    fresh = {
        "status": "pending",
        "attempts": 0,
        "error": None,
        "reason": None,
        "at": utcnow(),
        **state,
    }
    await services.database.documents.update_one(
        {"_id": document_id}, {"$set": {f"notifications.{channel}": fresh}}
    )


@pytest.fixture(scope="module")
def worker(
    test_env: dict[str, str], services: Services, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One `mailbox-service worker` per test module (a module may kill and restart it)."""
    process = WorkerProcess(tmp_path_factory.mktemp("worker")).start()
    yield process
    process.stop()


class Harness:
    """A Deliverer wired like the worker's, with a StubBroker queue."""

    def __init__(
        self,
        settings: Settings,
        documents: Collection[Doc],
        *,
        templates: Path | None = None,
        lease: dt.timedelta | None = None,
    ) -> None:
        self.settings = settings
        self.broker = StubBroker()
        for queue in ("email", "realtime"):
            self.broker.declare_queue(queue)
        self.queue = NotificationQueue(self.broker)
        self.outbox = Outbox(
            documents,
            lease=lease or dt.timedelta(seconds=settings.notify.lease_s),
        )
        self.emitter = BlockingRealtimeEmitter(settings.redis.url)
        self.deliverer = Deliverer(
            outbox=self.outbox,
            queue=self.queue,
            registry=load_registry(),
            renderer=EmailRenderer(
                templates or templates_dir() / "email", portal_url=settings.portal_url
            ),
            smtp=SmtpSender(settings.smtp),
            emitter=self.emitter,
            settings=settings,
        )

    def enqueued(self, queue: str) -> list[Message[Any]]:
        return [Message.decode(raw) for raw in list(self.broker.queues[queue].queue)]

    def close(self) -> None:
        self.emitter.close()


def with_smtp_port(settings: Settings, port: int, **notify: Any) -> Settings:
    return msgspec.structs.replace(
        settings,
        smtp=msgspec.structs.replace(settings.smtp, port=port),
        notify=msgspec.structs.replace(settings.notify, **notify),
    )
