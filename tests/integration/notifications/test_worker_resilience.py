"""Failures around a real worker process: SMTP down, Redis down at ingestion, a worker killed
mid-job. No notification may be lost, and none may go out twice where we can prevent it.

These tests stop and start servers of the session's stack; each restores what it stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app_fixtures import ingested_id, invoice_metadata
from mailbox_devtools.devstack import Stack
from mailbox_service.wiring.services import Services
from notify_fixtures import (
    Maildir,
    WorkerProcess,
    channel_state,
    eventually,
    wait_mail,
    wait_status,
)


async def test_smtp_down_is_retried_until_it_is_back(
    stack: Stack,
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    maildir = Maildir()
    stack.stop("smtp")
    try:
        document_id = await ingested_id(client, ingest_key, invoice_metadata(paperless_account))
        retrying = await eventually(
            lambda: channel_state(services, document_id, "email"),
            lambda s: s["attempts"] >= 2 and s["status"] in {"pending", "sending"},
            what="two failed attempts",
        )
        assert "refused" in (retrying["error"] or "").lower()
        # Real time does not depend on SMTP.
        await wait_status(services, document_id, "realtime", "sent")
    finally:
        stack.start("smtp")
    state = await wait_status(services, document_id, "email", "sent", within=30)
    assert state["attempts"] >= 3
    assert state["error"] is None
    await wait_mail(maildir, document_id)
    await asyncio.sleep(0.5)
    assert len(maildir.for_document(document_id)) == 1


async def test_redis_down_at_ingestion_is_caught_up_by_the_sweep(
    stack: Stack,
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
) -> None:
    maildir = Maildir()
    await services.redis.ping()  # a pooled connection from before the restart
    stack.stop("redis")
    try:
        meta = invoice_metadata(paperless_account)
        document_id = await ingested_id(client, ingest_key, meta)  # still 201
        for channel in ("email", "realtime"):
            assert (await channel_state(services, document_id, channel))["status"] == "pending"
    finally:
        stack.start("redis")
    await wait_status(services, document_id, "email", "sent", within=40)
    await wait_status(services, document_id, "realtime", "sent", within=20)
    await wait_mail(maildir, document_id)
    await asyncio.sleep(0.5)
    assert len(maildir.for_document(document_id)) == 1
    assert "outbox.swept" in worker.output()
    # The service's own Redis client outlives the restart: its stale connection is replaced.
    assert await services.redis.ping()


def _smtp_pid(stack: Stack) -> int:
    (smtp,) = [s for s in stack.status() if s.name == "smtp"]
    assert smtp.pid is not None
    return smtp.pid


async def test_worker_killed_mid_job_loses_nothing(
    stack: Stack,
    client: AsyncTestClient[Any],
    ingest_key: str,
    paperless_account: str,
    services: Services,
    worker: WorkerProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    maildir = Maildir()
    # Freeze the relay: connections are accepted by the kernel but never greeted, so the
    # worker's jobs hang inside the SMTP conversation, claimed and unfinished.
    smtp_pid = _smtp_pid(stack)
    os.kill(smtp_pid, signal.SIGSTOP)
    replacement: WorkerProcess | None = None
    try:
        ids = [
            await ingested_id(client, ingest_key, invoice_metadata(paperless_account))
            for _ in range(6)
        ]
        await eventually(
            lambda: asyncio.gather(*(channel_state(services, i, "email") for i in ids)),
            lambda states: sum(s["status"] == "sending" for s in states) >= 2,
            what="jobs in flight",
        )
        worker.kill()
        in_flight = [
            i for i in ids if (await channel_state(services, i, "email"))["status"] == "sending"
        ]
        assert in_flight, "the kill should catch jobs mid-delivery"
    finally:
        os.kill(smtp_pid, signal.SIGCONT)
    replacement = WorkerProcess(tmp_path_factory.mktemp("worker2")).start()
    try:
        for document_id in ids:
            state = await wait_status(services, document_id, "email", "sent", within=40)
            if document_id in in_flight:
                assert state["attempts"] >= 2  # the lease ran out and the job was taken over
        for document_id in ids:
            await wait_mail(maildir, document_id)
        await asyncio.sleep(0.5)
        # The frozen relay never accepted a message, so none of them goes out twice.
        assert all(len(maildir.for_document(i)) == 1 for i in ids)
    finally:
        replacement.stop()
    # Later tests in this module (none today) would otherwise find no worker.
    worker.start()
