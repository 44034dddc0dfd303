"""The small pure parts of observability/: request id validation, label bounding, URLs."""

from __future__ import annotations

import pytest
from litestar.exceptions import NotFoundException

from mailbox_service.errors import Conflict
from mailbox_service.observability import tracing
from mailbox_service.observability.http_metrics import status_of
from mailbox_service.observability.mongo_events import operation_of
from mailbox_service.observability.request_id import (
    MAX_LENGTH,
    accepted_request_id,
    new_request_id,
)
from mailbox_service.settings import OtelSettings


@pytest.mark.parametrize(
    "value",
    ["abc", "0f3c-22:batch.7_x", "A" * MAX_LENGTH, "5f0c2b7e9d6a4e1f8c3b2a1d0e9f8c7b"],
)
def test_safe_request_ids_are_kept(value: str) -> None:
    assert accepted_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [None, "", "a" * (MAX_LENGTH + 1), "two words", "new\nline", "x;y", "-dash-first", "ü", "a/b"],
)
def test_unsafe_request_ids_are_refused(value: str | None) -> None:
    assert accepted_request_id(value) is None


def test_generated_ids_are_unique_and_acceptable() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(accepted_request_id(i) == i for i in ids)


def test_mongo_operations_are_a_bounded_set() -> None:
    assert operation_of("find") == "find"
    assert operation_of("findAndModify") == "findAndModify"
    assert operation_of("someAdminCommandWithAName") == "other"


def test_error_statuses_for_request_metrics() -> None:
    assert status_of(Conflict("x")) == 409
    assert status_of(NotFoundException()) == 404
    assert status_of(RuntimeError("boom")) == 500


def test_traces_url() -> None:
    assert tracing.traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert tracing.traces_url("https://c/otlp/v1/traces") == "https://c/otlp/v1/traces"


def test_tracing_is_off_without_an_endpoint() -> None:
    assert tracing.configure(OtelSettings(), "test") is False
    assert not tracing.enabled()
    options: dict[str, object] = {}
    tracing.inject_into(options)
    assert options == {}  # nothing travels in messages when tracing is off
