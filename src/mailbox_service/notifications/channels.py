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

# Channels delivered under a lease (claim, deliver, record: exactly once unless a worker stops
# between hand-over and record). The real-time event is delivered at least once without one
# (read, deliver, record: one write instead of two); clients de-duplicate by document id.
LEASED: dict[Channel, bool] = {"email": True, "realtime": False}

Status = Literal["pending", "sending", "sent", "failed", "skipped"]
"""`sending` is the claimed state: one worker holds a lease on the channel until it records
the outcome (see notifications/outbox.py)."""
STATUSES: tuple[Status, ...] = ("pending", "sending", "sent", "failed", "skipped")
