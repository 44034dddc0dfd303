"""The outbox: per-channel notification state on the document, and every change to it.

A channel's state (`documents.notifications.<channel>`, written by ingest as the initial plan):
  status       pending → sending → sent | failed | skipped (sending → pending on a retry;
               any state but a live `sending` → pending on an operator's resend)
  version      0 as ingest writes it (absent), +1 with every change
  attempts     delivery attempts started
  error        the last failure, for operators; reason: why `skipped` (or who resent it)
  at           when the status last changed
  next_at      pending only: not before this time (retry backoff); absent means "now"
  lease_until, claim, worker
               sending only: who holds the job and until when
  sent_at, message_id, locale, relay_reply
               when the relay (or Redis) accepted it, what was sent, and (email) the relay's
               reply to it: its receipt, shown in evidence bundles

Every change is ONE `find_one_and_update` on the document, a compare-and-set: the filter is
the condition the change needs (the channel is claimable; it is still held by this claim; it
may be resent), the update `$set`s and `$inc`s only `notifications.<channel>.*`. MongoDB and
DocumentDB (FerretDB 2, measured: tests/integration/notifications/test_outbox_engine.py) apply
it atomically, so of any number of workers racing for one pending channel exactly one matches,
a late worker whose lease was taken over matches nothing, and concurrent writes of other fields
(the portal's `read_at`, the other channel's outcome) are never lost, since nothing writes a
document whole.
No transactions and no change streams: DocumentDB has neither.

One definition, two drivers:
  states.py      the state machine, pure: states, changes, conditions (as predicates and as
                 filters), claims
  operations.py  each operation once, as the database calls it makes
  stores.py      `Outbox` (sync pymongo: the worker, its sweep, its metrics) and `AsyncOutbox`
                 (async driver: the admin API and CLI) running those operations
  indexes.py     the outbox's indexes (migration 0003 and the worker's start-up use them)

See docs/notifications.md for the resulting guarantee and where a crash can still make it differ.
"""

from mailbox_service.storage.outbox.indexes import OUTBOX_INDEXES, ensure_indexes
from mailbox_service.storage.outbox.operations import Backlog
from mailbox_service.storage.outbox.states import (
    CHANNELS,
    STATUSES,
    Channel,
    ChannelChange,
    Claim,
    State,
    Status,
)
from mailbox_service.storage.outbox.stores import AsyncOutbox, Outbox

__all__ = [
    "CHANNELS",
    "OUTBOX_INDEXES",
    "STATUSES",
    "AsyncOutbox",
    "Backlog",
    "Channel",
    "ChannelChange",
    "Claim",
    "Outbox",
    "State",
    "Status",
    "ensure_indexes",
]
