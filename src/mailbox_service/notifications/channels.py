"""Notification channels and the names of the jobs that deliver them.

Shared by the producer (ingest, sweep, resend) and the worker, so that enqueueing never needs
to import the actors themselves. The channels and their statuses are the outbox's
(storage/outbox/states.py), named here too for the code that queues and delivers them.
"""

from __future__ import annotations

from mailbox_service.storage.outbox.states import CHANNELS, STATUSES, Channel, Status

__all__ = ["ACTOR", "CHANNELS", "LEASED", "QUEUE", "STATUSES", "Channel", "Status"]

# dramatiq queue and actor per channel.
QUEUE = {"email": "email", "realtime": "realtime"}
ACTOR = {"email": "deliver_email", "realtime": "deliver_realtime"}

# Channels delivered under a lease (claim, deliver, record: exactly once unless a worker stops
# between hand-over and record). The real-time event is delivered at least once without one
# (read, deliver, record: one write instead of two); clients de-duplicate by document id.
LEASED: dict[Channel, bool] = {"email": True, "realtime": False}
