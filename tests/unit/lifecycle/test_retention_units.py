"""Settings and CLI parsing of the retention and write-once features (no servers)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import click
import pytest

from mailbox_service.cli.retention import parse_at, plan_lines
from mailbox_service.doctypes import load_registry
from mailbox_service.errors import ConfigurationError
from mailbox_service.lifecycle.retention import PurgePlan
from mailbox_service.settings import load_settings
from mailbox_service.storage.holds import unheld_filter


def test_lock_mode_is_validated_and_names_the_variable() -> None:
    assert load_settings({}).s3.lock_mode == "GOVERNANCE"
    assert load_settings({"MAILBOX_S3_LOCK_MODE": "COMPLIANCE"}).s3.lock_mode == "COMPLIANCE"
    with pytest.raises(ConfigurationError, match="MAILBOX_S3_LOCK_MODE"):
        load_settings({"MAILBOX_S3_LOCK_MODE": "governance-ish"})


def test_retention_settings_from_the_environment() -> None:
    settings = load_settings(
        {"MAILBOX_RETENTION_PURGE_INTERVAL_S": "0", "MAILBOX_RETENTION_BATCH_SIZE": "50"}
    )
    assert settings.retention.purge_interval_s == 0
    assert settings.retention.batch_size == 50
    with pytest.raises(ConfigurationError, match="MAILBOX_RETENTION_BATCH_SIZE"):
        load_settings({"MAILBOX_RETENTION_BATCH_SIZE": "many"})


def test_at_is_utc_and_a_bad_value_names_the_option() -> None:
    assert parse_at("2036-01-01T00:00:00Z") == dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
    assert parse_at("2036-01-01T01:00:00+01:00") == dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
    assert parse_at("2036-01-01") == dt.datetime(2036, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(click.BadParameter, match="ISO 8601"):
        parse_at("next tuesday")


def test_plan_lines_show_each_type_and_the_total() -> None:
    plan = PurgePlan(
        dt.datetime(2036, 1, 1, tzinfo=dt.UTC),
        purge=Counter({"invoice": 3}),
        held=Counter({"invoice": 1, "shipment_document": 2}),
        locked=Counter({"contract_letter": 4}),
    )
    lines = plan_lines(plan)
    assert lines[0] == "documents past retain_until at 2036-01-01T00:00:00Z:"
    assert "  invoice: purge 3, keep 1 held, 0 file still locked" in lines
    assert "  contract_letter: purge 0, keep 0 held, 4 file still locked" in lines
    assert lines[-1] == "total to purge: 3"


def test_write_once_types_and_the_unheld_filter() -> None:
    immutable = sorted(t.name for t in load_registry() if t.immutable_files)
    assert immutable == ["contract_letter", "invoice"]
    assert unheld_filter([]) == {"hold": None}
    assert unheld_filter(["a"]) == {"hold": None, "account_id": {"$nin": ["a"]}}
