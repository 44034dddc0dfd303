"""Named run leases: one process at a time runs a periodic job, at most once per interval.

A lease document in `leases` (`{_id: <name>, holder, until, done_at}`) decides who runs: a
process claims it only when no lease is live (`until` passed) and the last run finished more
than one interval ago (`done_at`). Two processes racing for it both try one atomic
update-or-insert; the loser hits the unique `_id` and skips. The schedule survives restarts
because `done_at` is stored, not remembered. A process that dies mid-run leaves a lease that
expires after `lease_s`, so the job must be safe to run again.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from pymongo.errors import DuplicateKeyError

from mailbox_service.clock import utcnow
from mailbox_service.storage.mongo import Collections

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


class RunLease:
    def __init__(
        self, collections: Collections, name: str, lease_s: float, interval_s: float
    ) -> None:
        self._leases = collections.leases
        self.name = name
        self._lease = dt.timedelta(seconds=lease_s)
        self._interval = dt.timedelta(seconds=interval_s)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    async def prepare(self) -> None:
        """Create the lease document of a job that never ran: the claim's condition on
        `done_at` needs the field, or an upsert would insert a lease without it."""
        await self._leases.update_one(
            {"_id": self.name},
            {"$setOnInsert": {"until": _NEVER, "done_at": _NEVER}},
            upsert=True,
        )

    async def claim(self) -> bool:
        """True when this process may run the job now."""
        now = utcnow()
        try:
            await self._leases.update_one(
                {
                    "_id": self.name,
                    "until": {"$lt": now},
                    "done_at": {"$lt": now - self._interval},
                },
                {"$set": {"holder": self.holder, "until": now + self._lease}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        found = await self._leases.find_one({"_id": self.name})
        return found is not None and found.get("holder") == self.holder

    async def finish(self) -> None:
        now = utcnow()
        await self._leases.update_one(
            {"_id": self.name, "holder": self.holder}, {"$set": {"until": now, "done_at": now}}
        )
