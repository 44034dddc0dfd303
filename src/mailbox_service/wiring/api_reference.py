"""docs/api.md's table of operations and statuses, made from the served OpenAPI document.

The table between the two markers in docs/api.md is generated; a unit test fails when it
differs from the schema, and the prose around it may name no operation, path or status the
schema lacks. Regenerate the table after changing a route's contract:

    python -m mailbox_service.wiring.api_reference --write
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from litestar._openapi.plugin import OpenAPIPlugin

from mailbox_service.settings import Settings
from mailbox_service.wiring.app import create_litestar

BEGIN = "<!-- operations table: generated from /schema/openapi.json, do not edit -->"
END = "<!-- end of operations table -->"
METHODS = ("get", "put", "post", "delete", "patch")
API_DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The document `/schema/openapi.json` serves (the app is built, nothing is connected)."""
    app = create_litestar(settings or Settings())
    document: dict[str, Any] = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(operationId, METHOD, path, operation) for every operation, in path order."""
    for path, item in sorted(document.get("paths", {}).items()):
        for method in METHODS:
            operation = item.get(method)
            if operation is not None:
                yield operation["operationId"], method.upper(), path, operation


def _credentials(operation: dict[str, Any]) -> str:
    names = []
    for requirement in operation.get("security") or []:
        for scheme, scopes in requirement.items():
            names.append(f"{scheme} ({', '.join(scopes)})" if scopes else scheme)
    return ", ".join(names) or "none"


def operations_table(document: dict[str, Any]) -> str:
    rows = [
        "| operation | method and path | credentials | statuses |",
        "|---|---|---|---|",
    ]
    for operation_id, method, path, operation in operations(document):
        statuses = ", ".join(f"`{status}`" for status in sorted(operation["responses"]))
        rows.append(
            f"| `{operation_id}` | `{method} {path}` | {_credentials(operation)} | {statuses} |"
        )
    return "\n".join(rows)


def with_table(markdown: str, table: str) -> str:
    """`markdown` with the generated block replaced by `table`."""
    start, end = markdown.find(BEGIN), markdown.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs/api.md lacks the markers {BEGIN!r} ... {END!r}")
    return f"{markdown[: start + len(BEGIN)]}\n{table}\n{markdown[end:]}"


_OPERATION_NAMED = re.compile(r"\(operation `(\w+)`\)|^\| `[A-Z]+ [^`]+` \| `(\w+)` \|", re.M)
_METHOD_PATH = re.compile(r"`(GET|PUT|POST|DELETE|PATCH) (/[^`?\s]*)")
_STATUS_ROW = re.compile(r"^\| `(\d{3})` \|", re.M)
_HEADING = re.compile(r"^#{2,4} .*$", re.M)


def _shape(path: str) -> str:
    """A path with its parameters unnamed: `/documents/{id}` and `/documents/{document_id}`."""
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/") or "/")


def drift(markdown: str, document: dict[str, Any]) -> list[str]:
    """Everything docs/api.md says that the schema contradicts (empty: no drift)."""
    problems = []
    expected = with_table(markdown, operations_table(document))
    if expected != markdown:
        problems.append(
            "the operations table differs from the schema; regenerate it with "
            "`python -m mailbox_service.wiring.api_reference --write`"
        )
    by_id = {op_id: operation for op_id, _, _, operation in operations(document)}
    by_route = {
        f"{method} {_shape(path)}": op_id for op_id, method, path, _ in operations(document)
    }
    prose = markdown[: markdown.find(BEGIN)] + markdown[markdown.find(END) :]
    for match in _OPERATION_NAMED.finditer(prose):
        name = match.group(1) or match.group(2)
        if name not in by_id:
            problems.append(f"docs/api.md names operation `{name}`, which the schema lacks")
    for method, path in _METHOD_PATH.findall(prose):
        if path.startswith("/schema"):
            continue  # the schema's own routes are not part of it
        if f"{method} {_shape(path)}" not in by_route:
            problems.append(f"docs/api.md names `{method} {path}`, which the schema lacks")
    # A status table under an operation's heading names only statuses it can answer.
    headings = list(_HEADING.finditer(prose))
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(prose)
        section = prose[heading.end() : end]
        named = _OPERATION_NAMED.search(heading.group(0))
        routes = _METHOD_PATH.findall(heading.group(0))
        op_id = (named.group(1) if named else None) or next(
            (by_route.get(f"{m} {_shape(p)}") for m, p in routes), None
        )
        if op_id not in by_id:
            continue
        for status in _STATUS_ROW.findall(section):
            if status not in by_id[op_id]["responses"]:
                problems.append(
                    f"docs/api.md gives `{status}` for `{op_id}`, which its schema does not list"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in docs/api.md")
    parser.add_argument("--schema", action="store_true", help="print the OpenAPI document")
    args = parser.parse_args(argv)
    document = openapi_document()
    if args.schema:
        print(json.dumps(document, indent=2))
        return 0
    markdown = API_DOC.read_text()
    if args.write:
        API_DOC.write_text(with_table(markdown, operations_table(document)))
    problems = drift(API_DOC.read_text(), document)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
