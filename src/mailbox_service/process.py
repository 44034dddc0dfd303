"""This process as the records it leaves name it."""

from __future__ import annotations

import os
import socket
import threading


def worker_name() -> str:
    """Recorded on a claim (an outbox channel, a reminder), so operators see which process and
    thread holds a stuck job."""
    return f"{socket.gethostname()}/{os.getpid()}/{threading.current_thread().name}"
