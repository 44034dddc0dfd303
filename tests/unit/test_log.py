"""Log set-up: levels are honoured before any processing, secrets never reach a line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from mailbox_service.log import configure_logging, get_logger


@dataclass
class Logged:
    processed: list[str] = field(default_factory=list)
    """Events that reached the processors (recorded by an `enrich` processor)."""
    stream: io.StringIO = field(default_factory=io.StringIO)
    """What the configured handler wrote."""

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def logged() -> Iterator[Logged]:
    seen = Logged()

    def record(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        seen.processed.append(str(event["event"]))
        return event

    configure_logging("json", enrich=[record])
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(seen.stream)
    yield seen
    configure_logging("json")


def test_a_line_below_its_loggers_level_is_never_processed(logged: Logged) -> None:
    logging.getLogger("test.quiet").setLevel(logging.WARNING)
    try:
        quiet = get_logger("test.quiet")
        quiet.info("quiet.info")
        quiet.warning("quiet.warning")
        get_logger("test.loud").info("loud.info")
    finally:
        logging.getLogger("test.quiet").setLevel(logging.NOTSET)
    assert logged.processed == ["quiet.warning", "loud.info"]
    assert [line["event"] for line in logged.lines()] == ["quiet.warning", "loud.info"]


def test_credentials_are_redacted(logged: Logged) -> None:
    get_logger("test.secrets").info("login", password="hunter2", api_key="k", user="ada")
    (line,) = logged.lines()
    assert (line["password"], line["api_key"], line["user"]) == ("[redacted]", "[redacted]", "ada")
    assert "hunter2" not in logged.stream.getvalue()
