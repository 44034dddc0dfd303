"""deploy/prometheus/alerts.yml and deploy/grafana/mailbox.json against what the service exports.

Every metric an alert or a dashboard panel names must be one a real API process or a real
worker process serves on /metrics (scraped here after an ingest and its delivery), so a renamed
metric cannot leave an alert silently watching nothing. `up` is Prometheus's own. When promtool
has been built (`MAILBOX_PROMTOOL`, or the devstack's tool cache), the rules also go through
`promtool check rules`, and its unit tests (alerts_test.yml) through `promtool test rules`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from app_fixtures import free_port, invoice_metadata, post_document
from mailbox_devtools.devstack.config import default_cache_dir, find_project_root
from mailbox_service.wiring.services import Services
from notify_fixtures import WorkerProcess, wait_status

ROOT = find_project_root()
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "mailbox.json"
PROMETHEUS_OWN = {"up"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_names(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(f"{family.name}{suffix}" for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: ours by prefix, plus Prometheus's `up`."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    named = set(re.findall(r"\bmailbox_[a-z0-9_]+\b", without_strings))
    named.update(n for n in PROMETHEUS_OWN if re.search(rf"\b{n}\b\s*[{{\[)]", without_strings))
    return named


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        rules.extend(group["rules"])
    return rules


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


@pytest.fixture(scope="module")
async def exported(
    client: AsyncTestClient[Any],
    ingest_key: str,
    services: Services,
    tmp_path_factory: pytest.TempPathFactory,
) -> set[str]:
    """Names on the API's and a worker's /metrics after one document went all the way."""
    account = f"acct-monitoring-{os.getpid()}"
    await services.accounts.update(
        account, by="test", paperless=True, email=f"{account}@example.org", locale="en"
    )
    port = free_port()
    worker = WorkerProcess(
        tmp_path_factory.mktemp("monitoring"),
        extra_env={"MAILBOX_METRICS_WORKER_PORT": str(port)},
    ).start()
    try:
        response = await post_document(client, ingest_key, invoice_metadata(account))
        assert response.status_code == 201, response.text
        await wait_status(services, response.json()["id"], "email", "sent")
        await client.get("/health/ready")
        api = (await client.get("/metrics")).text
        async with httpx.AsyncClient() as http:
            worker_text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        worker.stop()
    return exported_names(api) | exported_names(worker_text)


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    # What issue 12 asks to alert on: outbox age, failed notifications, 5xx rate, readiness.
    assert {
        "MailboxOutboxBacklogOld",
        "MailboxNotificationFailures",
        "MailboxHttp5xxRatio",
        "MailboxNotReady",
    } <= names
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_alert_and_panel_names_an_exported_metric(exported: set[str]) -> None:
    assert "mailbox_documents_ingested_total" in exported  # the scrape itself worked
    unknown: dict[str, set[str]] = {}
    for rule in alert_rules():
        named = metric_names(rule["expr"])
        assert named, f"alert {rule['alert']} names no metric"
        missing = named - exported - PROMETHEUS_OWN
        if missing:
            unknown[f"alert {rule['alert']}"] = missing
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        named = metric_names(expr)
        assert named, f"panel query names no metric: {expr}"
        missing = named - exported - PROMETHEUS_OWN
        if missing:
            unknown[f"panel {expr[:60]}"] = missing
    assert not unknown, f"not exported by the service: {unknown}"


def test_dashboard_covers_the_issue() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("ingested", "latency", "notification outcomes", "outbox", "5xx"):
        assert topic in titles, topic


def _promtool() -> Path | None:
    configured = os.environ.get("MAILBOX_PROMTOOL")
    if configured:
        return Path(configured)
    found = sorted(default_cache_dir(os.environ).glob("promtool-*/promtool"))
    return found[-1] if found else None


def test_promtool_accepts_the_rules() -> None:
    promtool = _promtool()
    # `make test` builds it first; a run without it must not pass for want of the checker.
    assert promtool is not None, (
        "promtool not found: run `make promtool` (scripts/build-promtool.sh) or set "
        "MAILBOX_PROMTOOL (docs/operations.md, Building promtool)"
    )
    assert promtool.exists(), f"MAILBOX_PROMTOOL names no file: {promtool}"
    result = subprocess.run(
        [str(promtool), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout
    # The rules' unit tests: each alert fires (with its annotations) on a troubled half hour
    # of synthetic series, and stays quiet before its `for` has passed.
    tested = subprocess.run(
        [str(promtool), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
