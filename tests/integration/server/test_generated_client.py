"""A client generated from `/schema/openapi.json` works: it ingests a document with an ingest
key, lists it with a portal JWT and downloads the same bytes.

The generator is openapi-python-client, pinned in the dev group and run from the venv, so this
works on a fresh machine from the project's files alone. Its one setting: PDF responses are
handled as binary (the generator knows `application/octet-stream`, not `application/pdf`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_fixtures import LiveServer, sample_pdf, unique
from mailbox_service.auth.tokens import mint_token
from mailbox_service.settings import Settings

PACKAGE = "mailbox_contract_client"
GENERATOR_CONFIG = f"""\
project_name_override: mailbox-contract-client
package_name_override: {PACKAGE}
post_hooks: []
content_type_overrides:
  application/pdf: application/octet-stream
"""


def generate_client(schema_url: str, into: Path) -> Any:
    """Generate the client package into `into` and import it."""
    schema = httpx.get(schema_url, timeout=30).raise_for_status().json()
    (into / "openapi.json").write_text(json.dumps(schema))
    (into / "generator.yaml").write_text(GENERATOR_CONFIG)
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(into / "openapi.json"),
            "--config",
            str(into / "generator.yaml"),
            "--output-path",
            str(into / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation made it into the client: the generator drops what it cannot parse.
    assert "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(into))
    importlib.invalidate_caches()
    return importlib.import_module(PACKAGE)


@pytest.fixture
def generated(live_server: LiveServer, tmp_path: Path) -> Any:
    package = generate_client(f"{live_server.url}/schema/openapi.json", tmp_path)
    yield package
    sys.path.remove(str(tmp_path))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


async def test_generated_client_ingests_lists_and_downloads(
    generated: Any,
    live_server: LiveServer,
    settings: Settings,
    ingest_key: str,
) -> None:
    client_module = importlib.import_module(f"{PACKAGE}.client")
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    ingest = importlib.import_module(f"{PACKAGE}.api.ingestion.ingest_document")
    listing = importlib.import_module(f"{PACKAGE}.api.mailbox.list_mailbox_documents")
    download = importlib.import_module(f"{PACKAGE}.api.mailbox.download_mailbox_document")

    account = unique("gen")
    pdf = sample_pdf("generated client")
    sender = client_module.AuthenticatedClient(base_url=live_server.url, token=ingest_key)
    metadata = models.InvoiceMetadata(
        type_="invoice",
        source_ref=unique("ref"),
        account_id=account,
        attributes=models.InvoiceAttributes(
            invoice_number="INV-7",
            total_amount="84.20",
            currency="EUR",
            due_date=dt.date(2026, 12, 15),
        ),
        title="Invoice INV-7",
    )
    upload = models.IngestDocumentDocumentUpload(
        metadata=metadata,
        file=types.File(
            payload=io.BytesIO(pdf), file_name="invoice.pdf", mime_type="application/pdf"
        ),
    )
    created = ingest.sync_detailed(client=sender, body=upload)
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, models.IngestResponse)
    assert created.parsed.account_id == account
    assert created.parsed.size == len(pdf)

    # An error answer parses into the documented envelope too.
    replayed = ingest.sync_detailed(
        client=sender,
        body=models.IngestDocumentDocumentUpload(
            metadata=metadata,
            file=types.File(payload=io.BytesIO(sample_pdf("other content")), file_name="x.pdf"),
        ),
    )
    assert replayed.status_code == 409
    assert isinstance(replayed.parsed, models.ErrorEnvelope)
    assert replayed.parsed.error.field == "source_ref"

    token = mint_token(settings.auth, unique("sub"), [account], ttl_s=600)
    reader = client_module.AuthenticatedClient(base_url=live_server.url, token=token)
    page = listing.sync(client=reader, account=account)
    assert isinstance(page, models.DocumentPage)
    assert [item.id for item in page.items] == [created.parsed.id]
    assert page.items[0].title == "Invoice INV-7"

    answer = download.sync_detailed(created.parsed.id, client=reader)
    assert answer.status_code == 200
    assert answer.parsed.payload.read() == pdf
    assert answer.headers["ETag"] == f'"{created.parsed.sha256}"'

    partial = download.sync_detailed(created.parsed.id, client=reader, range_="bytes=0-9")
    assert partial.status_code == 206
    assert partial.parsed.payload.read() == pdf[:10]
