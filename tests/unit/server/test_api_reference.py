"""The published OpenAPI document keeps its promises, and docs/api.md cannot drift from it."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema_rs
import pytest

from mailbox_service.doctypes import load_registry
from mailbox_service.errors import MailboxError, RateLimited
from mailbox_service.server.errors import _code, error_body
from mailbox_service.wiring import api_reference
from mailbox_service.wiring.api_reference import API_DOC, drift, openapi_document, operations


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def test_api_md_matches_the_schema(document: dict[str, Any]) -> None:
    assert drift(API_DOC.read_text(), document) == []


def test_drift_is_found_both_ways(document: dict[str, Any]) -> None:
    markdown = API_DOC.read_text()
    # A status the schema does not list, under an operation's heading.
    extra_status = markdown.replace(
        "| `413` | file over the limit", "| `418` | a teapot |\n| `413` | file over the limit", 1
    )
    assert any("`418` for `ingestDocument`" in p for p in drift(extra_status, document))
    # An operation or a route the schema does not have.
    ghost = markdown.replace(
        "## Admin API", "### `GET /v1/ghosts` (operation `listGhosts`)\n\n## Admin API", 1
    )
    problems = drift(ghost, document)
    assert any("`listGhosts`" in p for p in problems)
    assert any("`GET /v1/ghosts`" in p for p in problems)
    # An operation, or a status of one, that the table does not show.
    document = copy.deepcopy(document)
    for op_id, _, _, operation in operations(document):
        if op_id == "ingestDocument":
            operation["responses"]["418"] = {"description": "teapot"}
    assert any("operations table" in p for p in drift(markdown, document))


def test_every_error_is_the_envelope_with_its_headers(document: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for op_id, _, _, operation in operations(document):
        for status, answer in operation["responses"].items():
            assert "X-Request-ID" in answer["headers"], (op_id, status)
            if int(status) < 400 or op_id == "healthReady":
                continue
            assert answer["content"]["application/json"]["schema"] == envelope, (op_id, status)
            if status == "429":
                assert answer["headers"]["Retry-After"]["required"] is True
            if status == "401":
                assert "WWW-Authenticate" in answer["headers"]
    detail = document["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"status", "code", "message"}
    assert {"field", "request_id"} <= set(detail["properties"])


def test_every_authenticated_operation_names_its_scheme_and_answers_401_and_429(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    for op_id, _, path, operation in operations(document):
        if path.startswith("/health/"):
            assert not operation.get("security"), op_id
            continue
        assert operation.get("security"), op_id
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), op_id
        assert {"401", "429"} <= set(operation["responses"]), op_id
    scopes = {
        op_id: operation["security"][0].get("apiKey")
        for op_id, _, _, operation in operations(document)
        if operation.get("security")
    }
    assert scopes["ingestDocument"] == ["ingest"]
    assert scopes["resendNotification"] == ["admin"]
    assert scopes["listMailboxDocuments"] is None  # portalJwt


def test_ingest_body_is_multipart_with_one_metadata_schema_per_type(
    document: dict[str, Any],
) -> None:
    ingest = next(op for op_id, _, _, op in operations(document) if op_id == "ingestDocument")
    body = ingest["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["metadata", "file"]
    assert body["schema"]["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "The document itself.",
    }
    assert body["encoding"]["metadata"]["contentType"] == "application/json"
    schemas = document["components"]["schemas"]
    metadata = schemas["DocumentMetadata"]
    names = load_registry().names()
    assert sorted(metadata["discriminator"]["mapping"]) == names
    for name, ref in metadata["discriminator"]["mapping"].items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["properties"]["type"]["const"] == name
        attributes = schemas[variant["properties"]["attributes"]["$ref"].rsplit("/", 1)[1]]
        assert attributes["additionalProperties"] is False
    assert schemas["InvoiceAttributes"]["properties"]["due_date"]["format"] == "date"


def test_parameters_carry_the_rules_the_handlers_enforce(document: dict[str, Any]) -> None:
    def parameter(op: str, name: str) -> dict[str, Any]:
        operation = next(o for op_id, _, _, o in operations(document) if op_id == op)
        return next(p for p in operation["parameters"] if p["name"] == name)

    assert parameter("listMailboxDocuments", "type")["schema"]["enum"] == (load_registry().names())
    assert parameter("listMailboxDocuments", "limit")["schema"]["maximum"] == 100
    assert "pattern" in parameter("listMailboxDocuments", "account")["schema"]
    assert parameter("resendNotification", "channel")["required"] is True
    assert parameter("downloadMailboxDocument", "Range")["in"] == "header"
    download = next(
        o for op_id, _, _, o in operations(document) if op_id == "downloadMailboxDocument"
    )
    assert download["responses"]["206"]["headers"]["Content-Range"]["required"] is True
    assert "application/pdf" in download["responses"]["200"]["content"]


def test_the_reference_command_checks_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert api_reference.main([]) == 0
    assert api_reference.main(["--schema"]) == 0
    assert '"openapi": "3.1.0"' in capsys.readouterr().out


def _subclasses(cls: type[MailboxError]) -> list[type[MailboxError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_every_error_the_service_raises_fits_the_envelope_schema(
    document: dict[str, Any],
) -> None:
    validator = jsonschema_rs.validator_for(
        {"$ref": "#/components/schemas/ErrorEnvelope", "components": document["components"]}
    )
    raised = [cls for cls in _subclasses(MailboxError) if 400 <= cls.status_code < 600]
    assert len(raised) >= 9
    for cls in raised:
        body = error_body(cls.status_code, _code(cls.__name__), "what went wrong", "field.path")
        assert validator.is_valid(body), (cls, body)
    assert not validator.is_valid({"detail": "Bad Request", "status_code": 400})
    retry_after = document["paths"]["/v1/documents"]["post"]["responses"]["429"]["headers"]
    pattern = re.compile(retry_after["Retry-After"]["schema"]["pattern"])
    assert pattern.fullmatch(str(RateLimited("slow down", retry_after_s=12).retry_after_s))
