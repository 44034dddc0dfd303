"""What the server does with a query: the commands our code sends, and their `explain`.

`CommandLog` records every command a client sends (pymongo command monitoring), so a test can
run the real store or service method and then explain exactly the filter, sort and limit it
sent. `explain` turns a recorded command into the server's plan, and `Plan` reads the plan of
either engine we run on:

* DocumentDB under FerretDB 2 (tests, local stack) answers with the PostgreSQL plan under
  `queryPlanner.Plan`: index use is a node with "Index Name" ("Index Scan", "Bitmap Index
  Scan") whose "Index Cond" tests the document. A "Seq Scan" reads the whole collection, and
  so does an index scan whose only condition is the collection's shard key
  (`shard_key_value = 74`): PostgreSQL sometimes walks all of `_id_` that way instead of the
  table. DocumentDB sorts in PostgreSQL ("Sort" node) whichever index it reads, so a sort
  says nothing about the index there.
* MongoDB answers with `queryPlanner.winningPlan` (for an aggregation possibly under
  `stages[0].$cursor`): index use is an IXSCAN with `indexName`, a COLLSCAN reads everything,
  and a SORT stage is a blocking in-memory sort.

FerretDB says so in `serverInfo.ferretdb` (and `buildInfo.ferretdb`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pymongo import monitoring

Command = dict[str, Any]

# Explain cannot be asked of writes on FerretDB ("explain for update command is not
# supported"): their filter is explained as the find it implies, which reads the same index.
_FILTER_OF_WRITE = {"findAndModify": "query", "update": "q", "delete": "q"}


@dataclass
class Sent:
    """One command as sent, and what the server answered about its cursor."""

    name: str
    command: Command
    cursor_id: int | None = None
    batch: int | None = None


class CommandLog(monitoring.CommandListener):
    """Every command a client sends, with the cursor id and batch length of each reply."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._by_request: dict[int, Sent] = {}
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        record = Sent(event.command_name, dict(event.command))
        with self._lock:
            self.sent.append(record)
            self._by_request[event.request_id] = record

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self._lock:
            record = self._by_request.pop(event.request_id, None)
        cursor = event.reply.get("cursor") if isinstance(event.reply, dict) else None
        if record is not None and isinstance(cursor, dict):
            record.cursor_id = int(cursor.get("id", 0))
            batch = cursor.get("firstBatch", cursor.get("nextBatch"))
            record.batch = len(batch) if batch is not None else None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        with self._lock:
            self._by_request.pop(event.request_id, None)

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()

    def named(self, *names: str) -> list[Sent]:
        return [record for record in self.sent if record.name in names]

    def queries(self) -> list[Sent]:
        """The reads and writes that select documents (what `explain` can judge)."""
        return self.named("find", "aggregate", "count", "distinct", *_FILTER_OF_WRITE)


def explainable(sent: Sent) -> Command:
    """The command to put inside `explain`: reads as sent, a write's filter as a find."""
    command = {
        key: value
        for key, value in sent.command.items()
        if not key.startswith("$") and key not in {"lsid", "txnNumber", "readConcern"}
    }
    if sent.name == "findAndModify":
        return {"find": command["findAndModify"], "filter": command.get("query", {}), "limit": 1}
    if sent.name in ("update", "delete"):
        statement = command["updates" if sent.name == "update" else "deletes"][0]
        return {"find": command[sent.name], "filter": statement.get("q", {}), "limit": 1}
    return command


async def explain(db: Any, sent: Sent) -> Plan:
    explained = await db.command("explain", explainable(sent), verbosity="queryPlanner")
    return Plan.of(explained)


_SHARD_KEY = re.compile(r"shard_key_value = '\d+'::bigint")


def _selective(node: dict[str, Any]) -> bool:
    """A DocumentDB index node that narrows by a document field, not just the shard key."""
    condition = _SHARD_KEY.sub("", str(node.get("Index Cond", "")))
    return "OPERATOR" in condition


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in an explain answer, except MongoDB's plans that lost."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key != "rejectedPlans":
                yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@dataclass(frozen=True)
class Plan:
    """The parts of a plan the index tests judge, the same way for both engines."""

    on_ferretdb: bool
    indexes: frozenset[str]
    """Names of the indexes the plan reads."""
    full_scans: tuple[str, ...]
    """Nodes that read the whole collection: Seq Scan (DocumentDB), COLLSCAN (MongoDB)."""
    blocking_sort: bool
    """MongoDB only: a SORT stage, i.e. the index order is not the requested order."""
    stages: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, explained: dict[str, Any]) -> Plan:
        if "ferretdb" in explained.get("serverInfo", {}):
            nodes = [n for n in _walk(explained.get("queryPlanner", {})) if "Node Type" in n]
            scans = [n for n in nodes if "Index Name" in n]
            return cls(
                on_ferretdb=True,
                indexes=frozenset(str(n["Index Name"]) for n in scans if _selective(n)),
                full_scans=tuple(
                    f"Seq Scan on {n.get('Relation Name')}"
                    for n in nodes
                    if n["Node Type"] == "Seq Scan"
                )
                + tuple(
                    f"{n['Node Type']} of all of {n['Index Name']}"
                    for n in scans
                    if not _selective(n)
                ),
                blocking_sort=False,
                stages=tuple(str(n["Node Type"]) for n in nodes),
                raw=explained,
            )
        stages = [n for n in _walk(explained) if "stage" in n]
        return cls(
            on_ferretdb=False,
            indexes=frozenset(str(n["indexName"]) for n in stages if "indexName" in n),
            full_scans=tuple(str(n["stage"]) for n in stages if n["stage"] == "COLLSCAN"),
            blocking_sort=any(n["stage"] == "SORT" for n in stages),
            stages=tuple(str(n["stage"]) for n in stages),
            raw=explained,
        )

    def uses(self, *names: str) -> bool:
        """The plan reads one of `names` and never the whole collection."""
        return bool(self.indexes & set(names)) and not self.full_scans
