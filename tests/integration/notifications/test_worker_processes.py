"""`mailbox-service worker --processes 2`: a supervisor with two worker processes delivers,
and SIGTERM stops all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil

from app_fixtures import invoice_metadata, post_document
from mailbox_service.wiring.services import Services
from notify_fixtures import Maildir, WorkerProcess, wait_mail


async def test_two_processes_deliver_and_stop_together(
    client: Any, ingest_key: str, services: Services, paperless_account: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(tmp_path, threads=2, args=("--processes", "2")).start(timeout=60)
    assert worker.process is not None
    try:
        children = psutil.Process(worker.process.pid).children(recursive=True)
        assert len(children) >= 2
        # Watched from before the post: the maildir counts only mail newer than the watch.
        maildir = Maildir()
        response = await post_document(client, ingest_key, invoice_metadata(paperless_account))
        assert response.status_code == 201
        mails = await wait_mail(maildir, response.json()["id"], within=60)
        assert len(mails) == 1
    finally:
        worker.stop()
    assert worker.process.returncode is not None
    # multiprocessing's resource tracker leaves when its pipe to the supervisor closes, a
    # moment after the supervisor itself: allow a few seconds, then nothing may remain.
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not [child for child in alive if child.status() != psutil.STATUS_ZOMBIE]
