"""The worked example from docs/document-types.md, installed as a real package and used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_fixtures import cli, sample_pdf, start_live_server, stop_process, unique

REPO = Path(__file__).parents[3]
EXAMPLE = REPO / "examples" / "insurance-policy-doctype"
MAKE_UV = REPO / ".stack" / "tools" / "bin" / "uv"
"""Where `make setup` installs uv when there is none on the PATH (see the Makefile)."""


def _uv() -> str | None:
    """The uv that `make test` runs us with (`uv run` exports $UV), else the one the Makefile
    would use: on the PATH, or its own under .stack/tools. A fresh machine has only the last."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(MAKE_UV)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def install_example(target: Path, scratch: Path) -> None:
    """Install the example plugin into `target`, as a real package (built by its backend).

    With uv when there is one (it has the build backend cached from building this project);
    otherwise with pip from a scratch venv, since this project's venv has no pip of its own.
    """
    uv = _uv()
    if uv is not None:
        installer = [uv, "pip", "install", "--python", sys.executable]
    else:
        venv.create(scratch, with_pip=True)
        installer = [str(scratch / "bin" / "python"), "-m", "pip", "install"]
        installer.append("--disable-pip-version-check")
    result = subprocess.run(
        [*installer, "--quiet", "--no-deps", "--target", str(target), str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{' '.join(installer)} failed:\n{result.stderr}"


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("plugin-site")
    install_example(target, tmp_path_factory.mktemp("installer-venv"))
    return target


def test_installed_plugin_is_registered(plugin_path: Path) -> None:
    listed = cli("doctypes", "list", env={"PYTHONPATH": str(plugin_path)})
    assert "insurance_policy" in listed.stdout
    assert "mailbox_insurance_policy" in listed.stdout
    without = cli("doctypes", "list")
    assert "insurance_policy" not in without.stdout


def test_duplicate_type_name_fails_at_start_up(tmp_path: Path) -> None:
    dist = tmp_path / "evil_invoice-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-invoice\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[mailbox_service.document_types]\ninvoice = mailbox_service.doctypes.invoice:Invoice\n"
    )
    result = cli("doctypes", "list", env={"PYTHONPATH": str(tmp_path)}, check=False)
    assert result.returncode != 0
    assert "'invoice' is registered twice" in result.stderr
    assert "Traceback" not in result.stderr


async def test_plugin_documents_go_through_the_one_pipeline(
    plugin_path: Path, ingest_key: str, tmp_path: Path, services: Any
) -> None:
    server = start_live_server(tmp_path, {"PYTHONPATH": str(plugin_path)})
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            auth = {"Authorization": f"Bearer {ingest_key}"}
            types = (await http.get("/v1/document-types", headers=auth)).json()["items"]
            assert "insurance_policy" in [t["name"] for t in types]

            meta: dict[str, Any] = {
                "type": "insurance_policy",
                "source_ref": unique("pol"),
                "account_id": unique("acct"),
                "attributes": {
                    "policy_number": "HP-0012345",
                    "product": "home",
                    "valid_from": "2027-01-01",
                    "annual_premium": "312.00",
                },
            }
            files: dict[str, tuple[str | None, str | bytes]] = {
                "metadata": (None, json.dumps(meta)),
                "file": ("p.pdf", sample_pdf()),
            }
            created = await http.post("/v1/documents", files=files, headers=auth)
            assert created.status_code == 201, created.text
            stored = await services.documents.record(created.json()["id"])
            assert stored["title"] == "Home policy HP-0012345"
            assert stored["summary"] == {
                "policy_number": "HP-0012345",
                "product": "home",
                "valid_from": "2027-01-01",
            }

            meta["attributes"]["policy_number"] = "12345"
            meta["source_ref"] = unique("pol")
            files = {"metadata": (None, json.dumps(meta)), "file": ("p.pdf", sample_pdf())}
            bad = await http.post("/v1/documents", files=files, headers=auth)
            assert bad.status_code == 422
            assert bad.json()["error"]["field"] == "attributes.policy_number"
    finally:
        stop_process(server.process)
