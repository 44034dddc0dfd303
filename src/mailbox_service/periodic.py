"""PeriodicThread: a job a worker process runs every so often until it stops.

The outbox sweep, the webhook sweep, the daily purge and the sender passes all run this way.
A failing run (MongoDB or Redis down, say) is logged and the next round tries again: a periodic
job must never take its worker process down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mailbox_service.log import get_logger

log = get_logger(__name__)


class PeriodicThread(threading.Thread):
    def __init__(
        self,
        name: str,
        interval_s: float,
        job: Callable[[], object],
        *,
        failure_event: str,
        first_run_at_once: bool = False,
    ) -> None:
        """`first_run_at_once`: run at start (a job that checks whether it is due) rather than
        after the first interval (a sweep, which has nothing to find in a fresh process)."""
        super().__init__(name=name, daemon=True)
        self.interval_s = interval_s
        self._job = job
        self._failure_event = failure_event
        self._first_run_at_once = first_run_at_once
        self._stop_event = threading.Event()

    def run(self) -> None:
        if not self._first_run_at_once and self._stop_event.wait(self.interval_s):
            return
        while not self._stop_event.is_set():
            try:
                self._job()
            except Exception as exc:  # the next round tries again
                log.error(self._failure_event, error=f"{type(exc).__name__}: {exc}")
            self._stop_event.wait(self.interval_s)

    def stop(self, join_timeout_s: float | None = None) -> None:
        self._stop_event.set()
        if join_timeout_s is not None:
            self.join(timeout=join_timeout_s)
