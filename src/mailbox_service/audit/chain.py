"""The per-day hash chain: extend it once per batch, and verify it.

Extending is two single-document steps, because multi-document transactions are not reliable
on DocumentDB (and not needed): first a compare-and-set on the day's head document in
`audit_heads` ({_id: day, seq, hash}) claims the sequence numbers seq+1..seq+n and moves the
head to the batch's last hash; then the batch is inserted. Two writers that read the same head
cannot both win the compare-and-set; the loser re-reads the head and links its batch again.
So several API processes write one chain without coordinating otherwise.

A crash (or a lost MongoDB) between the two steps leaves the head ahead of the stored
entries: `verify` reports those sequence numbers as missing, exactly as it reports entries
deleted later. The writer keeps a failed insert and retries it with the same ids, so only a
process that dies in that moment leaves such a gap.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from mailbox_service.audit.entry import GENESIS, day_of, entry_hash, entry_id, link
from mailbox_service.clock import utcnow
from mailbox_service.errors import MailboxError
from mailbox_service.storage.audit_log import AuditLogStore
from mailbox_service.storage.mongo import Collections, Doc

MAX_LINK_ATTEMPTS = 100
VERIFY_BATCH = 1000


class AuditWriteConflict(MailboxError):
    """Other writers kept winning the compare-and-set on the day's head (retried later)."""


@dataclass(frozen=True)
class DayReport:
    """What `verify` found for one day; `problem` is None when the chain is intact."""

    day: str
    entries: int
    head_seq: int | None
    problem: str | None = None
    seq: int | None = None
    """Sequence number where the first problem is."""

    @property
    def ok(self) -> bool:
        return self.problem is None


class AuditChain:
    def __init__(self, collections: Collections) -> None:
        self._log = AuditLogStore(collections)

    # --- writing -----------------------------------------------------------------------

    async def extend(self, entries: list[Doc]) -> list[Doc]:
        """Claim chain positions for `entries` (grouped by the UTC day of `at`); the chained
        copies are returned and must then be passed to `insert`."""
        by_day: dict[str, list[Doc]] = {}
        for entry in entries:
            by_day.setdefault(day_of(entry["at"]), []).append(entry)
        chained: list[Doc] = []
        for day, todays in sorted(by_day.items()):
            chained.extend(await self._extend_day(day, todays))
        return chained

    async def _extend_day(self, day: str, entries: list[Doc]) -> list[Doc]:
        for _ in range(MAX_LINK_ATTEMPTS):
            head = await self._log.head(day)
            seq, prev = (int(head["seq"]), str(head["hash"])) if head else (0, GENESIS)
            chained = link(day, entries, seq, prev)
            last = chained[-1]
            moved = {"seq": last["seq"], "hash": last["hash"], "updated_at": utcnow()}
            if head is None:
                if await self._log.start_day(day, moved):
                    return chained
                continue  # another writer started the day first
            if await self._log.move_head(day, seq, prev, moved):
                return chained
        raise AuditWriteConflict(f"audit chain {day}: head kept moving; batch kept for later")

    async def insert(self, chained: list[Doc]) -> None:
        """Store chained entries; safe to repeat (an entry already stored is left alone)."""
        await self._log.insert(chained)

    # --- checking ----------------------------------------------------------------------

    async def days(self) -> list[str]:
        """Every day with a head or with entries: a day whose head was deleted is still found
        (the calendar days between the first and the last entry are each looked up by `_id`)."""
        found = await self._log.head_days()
        bounds = await self._log.entry_id_bounds()
        if bounds is not None:
            first, last = bounds
            day = dt.date.fromisoformat(first.split(":")[0])
            end = dt.date.fromisoformat(last.split(":")[0])
            while day <= end:
                name = day.isoformat()
                if name not in found and await self._log.has_entries_on(name):
                    found.add(name)
                day += dt.timedelta(days=1)
        return sorted(found)

    async def verify_day(self, day: str, *, settle_s: float = 0.0) -> DayReport:
        """Walk `day`'s chain in order; report the first gap, edited entry or broken link.

        With `settle_s`, a gap is looked at again after that long before it is reported: a
        writer between its compare-and-set and its insert looks exactly like one for a moment.
        """
        report = await self._walk(day)
        if settle_s > 0 and report.problem and report.problem.startswith("gap"):
            await asyncio.sleep(settle_s)
            report = await self._walk(day)
        return report

    async def _walk(self, day: str) -> DayReport:
        head = await self._log.head(day)
        head_seq = int(head["seq"]) if head else None
        expected, prev, count = 1, GENESIS, 0
        async for doc in self._log.entries_of(day, VERIFY_BATCH):
            count += 1
            raw_seq = doc.get("seq")
            seq = raw_seq if isinstance(raw_seq, int) else -1
            if doc["_id"] != entry_id(day, seq) or doc.get("day") != day:
                return DayReport(
                    day, count, head_seq, f"entry {doc['_id']}: day or seq edited", expected
                )
            if seq != expected:
                missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                return DayReport(day, count, head_seq, f"gap: entries {missing} missing", expected)
            if entry_hash(doc) != doc.get("hash"):
                return DayReport(
                    day, count, head_seq, f"entry {seq}: contents do not match its hash", seq
                )
            if doc.get("prev_hash") != prev:
                return DayReport(
                    day,
                    count,
                    head_seq,
                    f"entry {seq}: prev_hash is not the hash of entry {seq - 1} (edited)",
                    seq,
                )
            prev, expected = doc["hash"], expected + 1
        last = expected - 1
        if head is None:
            if count:
                return DayReport(day, count, None, "the day's head document is missing", last)
            return DayReport(day, 0, None, f"no audit entries for {day}")
        if head_seq is not None and head_seq > last:
            missing = f"{last + 1}" if head_seq == last + 1 else f"{last + 1}..{head_seq}"
            return DayReport(day, count, head_seq, f"gap: entries {missing} missing", last + 1)
        if head_seq != last or head.get("hash") != prev:
            return DayReport(day, count, head_seq, "head does not match the last entry", last)
        return DayReport(day, count, head_seq)
