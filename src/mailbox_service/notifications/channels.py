"""Notification channels and the names of the jobs that deliver them.

Shared by the producer (ingest, sweep, resend) and the worker, so that enqueueing never needs
to import the actors themselves.
"""

from __future__ import annotations

from typing import Literal

Channel = Literal["email", "realtime"]
CHANNELS: tuple[Channel, ...] = ("email", "realtime")

# dramatiq queue and actor per channel.
QUEUE = {"email": "email", "realtime": "realtime"}
ACTOR = {"email": "deliver_email", "realtime": "deliver_realtime"}

Status = Literal["pending", "sent", "failed", "skipped"]
