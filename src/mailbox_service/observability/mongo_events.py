"""MongoDB command timings (and spans, when tracing) from the driver's command events.

pymongo measures each command itself (`duration_micros`), so metrics need no state between
`started` and `succeeded`; a span does, and is keyed by the command's request id on its
connection. Command names outside a fixed list count as `other`, to keep labels bounded.
"""

from __future__ import annotations

from typing import Any

from pymongo import monitoring

from mailbox_service.observability import metrics, tracing

COMMANDS = frozenset(
    {
        "aggregate", "count", "create", "createIndexes", "delete", "distinct", "drop",
        "dropIndexes", "explain", "find", "findAndModify", "getMore", "insert", "killCursors",
        "listCollections", "listIndexes", "ping", "update", "bulkWrite", "endSessions",
    }
)  # fmt: skip


def operation_of(command_name: str) -> str:
    return command_name if command_name in COMMANDS else "other"


def _key(event: Any) -> tuple[int, Any]:
    return (event.request_id, event.connection_id)


class CommandObserver(monitoring.CommandListener):
    def __init__(self) -> None:
        self._spans: dict[tuple[int, Any], Any] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        operation = operation_of(event.command_name)
        span = tracing.start_client_span(
            f"mongodb {operation}",
            {
                "db.system": "mongodb",
                "db.operation.name": operation,
                "db.namespace": event.database_name,
            },
        )
        if span is not None:
            self._spans[_key(event)] = span

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._finish(event, failed=False)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finish(event, failed=True)

    def _finish(self, event: Any, *, failed: bool) -> None:
        metrics.dependency_call(
            "mongodb", operation_of(event.command_name), event.duration_micros / 1e6, failed
        )
        span = self._spans.pop(_key(event), None) if self._spans else None
        if span is not None:
            if failed:
                tracing.mark_failed(span)
            span.end()


def command_listeners() -> list[monitoring.CommandListener]:
    """What a new client should report to: nothing when neither metrics nor traces are on."""
    return [CommandObserver()] if metrics.enabled() or tracing.enabled() else []
