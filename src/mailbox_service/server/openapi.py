"""The published contract at `/schema/openapi.json`: what each route may answer, in one line.

Litestar derives parameters, success bodies and component schemas from the handlers. What it
cannot know is declared on the route with the helpers here, and `publish_contract` adds it to
the generated document once, when the app is built:

    @get(
        "/things/{thing_id:str}",
        responses=errors(401, 404, 429),                 # each status the route can answer
        opt=documented(headers={200: (ETAG,)}),          # response headers, request body, ...
    )

Every error response is the one envelope of `server/errors.py` (`ErrorEnvelope`); every 401
names `WWW-Authenticate`, every 429 `Retry-After`, every response `X-Request-ID`, and every
operation the answers any request may get before its route runs (400, 414, 431).

Litestar builds the document lazily and serves one cached dict; `publish_contract` completes
that dict (through Litestar's private `OpenAPIPlugin`, the only way in: a Litestar upgrade that
changes it fails `tests/unit/server/test_api_reference.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.routes import HTTPRoute

from mailbox_service.doctypes import DocumentTypeRegistry

COMPONENTS = "#/components/schemas/"
OPENAPI_OPT = "openapi"
"""Key of a handler's `opt` that holds its `OperationDocs`."""


class ErrorDetail(msgspec.Struct, omit_defaults=True):
    """What went wrong; `code` is stable, `message` is for people."""

    status: Annotated[int, msgspec.Meta(ge=400, le=599, description="The HTTP status again.")]
    code: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^[a-z][a-z0-9_]*$",
            description="Stable machine-readable code, e.g. `invalid_metadata`, `not_found`.",
        ),
    ]
    message: Annotated[
        str, msgspec.Meta(description="For people; names the field and the limit it broke.")
    ]
    field: (
        Annotated[
            str,
            msgspec.Meta(
                description="The parameter, header, body part or metadata path at fault, "
                "e.g. `attributes.due_date`, `cursor`, `Content-Type`."
            ),
        ]
        | None
    ) = None
    request_id: (
        Annotated[
            str,
            msgspec.Meta(description="The request's `X-Request-ID`: quote it to the operator."),
        ]
        | None
    ) = None


class ErrorEnvelope(msgspec.Struct):
    """Every error response of the API has this shape."""

    error: ErrorDetail


# What each status means in this API; a route may say more with `errors(..., notes={...})`.
ERROR_MEANINGS: dict[int, str] = {
    400: "Malformed request: a parameter, header or body part is invalid (`error.field` names it).",
    401: "Missing, malformed, unknown, revoked or expired credentials.",
    403: "Authenticated, but these credentials may not do this.",
    404: "No such resource, or one the caller may not know about.",
    409: "The request contradicts what is stored.",
    410: "The resource was deleted on purpose; the message says when and why.",
    413: "The request body is over a size limit (the message names it).",
    415: "The content type is not one this route accepts.",
    416: "The requested byte range is outside the file.",
    422: "Well-formed, but invalid: `error.field` names the offending path.",
    429: "Rate limit reached: retry after `Retry-After` seconds.",
    503: "A backing service did not answer; retry later.",
}


def errors(*statuses: int, notes: Mapping[int, str] | None = None) -> dict[int, ResponseSpec]:
    """Error responses for a route's `responses=`: each status with the error envelope."""
    specs: dict[int, ResponseSpec] = {}
    for status in statuses:
        meaning = (notes or {}).get(status) or ERROR_MEANINGS.get(status)
        specs[status] = ResponseSpec(
            data_container=ErrorEnvelope,
            description=meaning or HTTPStatus(status).phrase,
            generate_examples=False,
        )
    return specs


def response(
    description: str, data: Any = None, *, media_type: str = "application/json"
) -> ResponseSpec:
    """Another success or redirect status of a route (e.g. 200 beside 201, 206, 304)."""
    return ResponseSpec(
        data_container=data, description=description, media_type=media_type, generate_examples=False
    )


@dataclass(frozen=True)
class Header:
    """A response header as the contract shows it."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = True

    def to_openapi(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "required": self.required,
            "schema": dict(self.schema),
        }


ETAG = Header("ETag", "Quoted SHA-256 of the file: send it back in `If-None-Match`/`If-Range`.")
CONTENT_RANGE = Header(
    "Content-Range", "The bytes sent, `bytes a-b/size` (`bytes */size` with 416)."
)
CONTENT_DISPOSITION = Header(
    "Content-Disposition", '`attachment` or `inline`, with `filename="…"` and `filename*`.'
)
CONTENT_LENGTH = Header("Content-Length", "Bytes in this response.", {"type": "string"})
RETRY_AFTER = Header(
    "Retry-After", "Seconds until a retry can succeed.", {"type": "string", "pattern": r"^\d+$"}
)
WWW_AUTHENTICATE = Header("WWW-Authenticate", "The scheme to authenticate with: `Bearer`.")
LOCATION = Header("Location", "Where the created or moved resource is.")
REQUEST_ID = Header(
    "X-Request-ID",
    "The request's id: the caller's `X-Request-ID` if it sent a valid one (1-128 characters of "
    "`A-Z a-z 0-9 . _ : -`), else a new one. Logs and error bodies carry it.",
)

# Headers every response with this status carries, whichever route answered.
HEADERS_BY_STATUS: dict[int, tuple[Header, ...]] = {401: (WWW_AUTHENTICATE,), 429: (RETRY_AFTER,)}

# What any request may be answered before its route runs (server/request_limits.py), so every
# operation lists these too.
ANY_REQUEST_ERRORS: dict[int, str] = {
    400: "A query parameter is over 1024 characters, holds control characters or is not "
    "UTF-8 (`error.field` names it).",
    414: "Path and query together are over 8 KiB.",
    431: "The request headers are over 16 KiB together.",
}
ENVELOPE_CONTENT = {"application/json": {"schema": {"$ref": COMPONENTS + "ErrorEnvelope"}}}

SchemaFactory = Callable[[DocumentTypeRegistry], Mapping[str, Any]]
"""Builds a schema from the registry, for what depends on the installed document types."""
ParameterSchema = Mapping[str, Any] | SchemaFactory
BodyFactory = Callable[[DocumentTypeRegistry], tuple[dict[str, Any], Mapping[str, Any]]]
"""Builds a request body and the component schemas it refers to."""


@dataclass(frozen=True)
class OperationDocs:
    """What a route's contract needs beyond what Litestar derives from its signature."""

    headers: Mapping[int, tuple[Header, ...]] = field(default_factory=dict)
    request_body: BodyFactory | None = None
    parameters: Mapping[str, ParameterSchema] = field(default_factory=dict)
    """The real constraints of parameters the handler checks itself, by parameter name."""
    request_headers: tuple[Mapping[str, Any], ...] = ()
    """Request headers the handler reads itself, as OpenAPI parameter objects."""
    required: tuple[str, ...] = ()
    """Parameters the handler insists on although its signature gives them a default."""
    file_responses: tuple[int, ...] = ()
    """Statuses whose body is a stored file: binary, in any content type a type accepts."""


def documented(
    *,
    headers: Mapping[int, Iterable[Header]] | None = None,
    request_body: BodyFactory | None = None,
    parameters: Mapping[str, ParameterSchema] | None = None,
    request_headers: Iterable[Mapping[str, Any]] = (),
    required: Iterable[str] = (),
    file_responses: Iterable[int] = (),
) -> dict[str, Any]:
    """A route's `opt=`: the parts of its contract Litestar cannot derive."""
    docs = OperationDocs(
        headers={status: tuple(items) for status, items in (headers or {}).items()},
        request_body=request_body,
        parameters=dict(parameters or {}),
        request_headers=tuple(request_headers),
        required=tuple(required),
        file_responses=tuple(file_responses),
    )
    return {OPENAPI_OPT: docs}


def struct_components(*types: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """JSON Schemas of msgspec types as OpenAPI refs, and the components they refer to."""
    refs, components = msgspec.json.schema_components(types, ref_template=COMPONENTS + "{name}")
    return list(refs), dict(components)


def document_type_names(registry: DocumentTypeRegistry) -> dict[str, Any]:
    """A query parameter naming a registered document type."""
    return {"type": "string", "enum": registry.names(), "description": "A registered type."}


def stored_content_types(registry: DocumentTypeRegistry) -> list[str]:
    return sorted({ct for doctype in registry for ct in doctype.content_types})


def publish_contract(app: Litestar, registry: DocumentTypeRegistry) -> dict[str, Any]:
    """Complete the app's OpenAPI document in place: the dict Litestar serves as JSON."""
    # The plugin builds the document once and serves that same dict afterwards.
    document = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    # msgspec's rendering of the envelope replaces Litestar's: both describe the same Struct.
    schemas.update(struct_components(ErrorEnvelope)[1])
    paths: dict[str, Any] = document.get("paths") or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path_item = paths.get(route.path_format or "/")
        if path_item is None:
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = path_item.get(method.lower())
                if operation is not None:
                    _complete_operation(operation, handler, registry, schemas)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _complete_operation(
    operation: dict[str, Any],
    handler: HTTPRouteHandler,
    registry: DocumentTypeRegistry,
    schemas: dict[str, Any],
) -> None:
    docs = handler.opt.get(OPENAPI_OPT) or OperationDocs()
    responses = operation.setdefault("responses", {})
    for status, meaning in ANY_REQUEST_ERRORS.items():
        responses.setdefault(str(status), {"description": meaning, "content": ENVELOPE_CONTENT})
    operation["responses"] = dict(sorted(responses.items()))
    if docs.request_body is not None:
        body, body_components = docs.request_body(registry)
        _merge_components(schemas, body_components)
        operation["requestBody"] = body
    for parameter in operation.get("parameters") or []:
        schema = docs.parameters.get(parameter.get("name", ""))
        if schema is not None:
            parameter["schema"] = dict(schema(registry) if callable(schema) else schema)
        if parameter.get("name") in docs.required:
            parameter["required"] = True
    if docs.request_headers:
        operation["parameters"] = [
            *(operation.get("parameters") or []),
            *({"in": "header", "required": False, **h} for h in docs.request_headers),
        ]
    for key, answer in (operation.get("responses") or {}).items():
        status = int(key)
        if status >= 400 and _is_default_error(answer):
            answer["content"] = ENVELOPE_CONTENT
        if status in docs.file_responses:
            answer["content"] = {
                content_type: {"schema": {"type": "string", "format": "binary"}}
                for content_type in stored_content_types(registry)
            }
        headers = dict(answer.get("headers") or {})
        for header in (*HEADERS_BY_STATUS.get(status, ()), *docs.headers.get(status, ())):
            headers[header.name] = header.to_openapi()
        headers[REQUEST_ID.name] = REQUEST_ID.to_openapi()
        answer["headers"] = headers


def _is_default_error(answer: Mapping[str, Any]) -> bool:
    """Litestar's own `{status_code, detail}` error schema, which this API never sends."""
    schema = ((answer.get("content") or {}).get("application/json") or {}).get("schema") or {}
    candidates = [schema, *(schema.get("oneOf") or [])]
    return any("status_code" in (s.get("properties") or {}) for s in candidates)


def _merge_components(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for name, schema in new.items():
        if name in into and into[name] != schema:
            raise ValueError(f"two different component schemas are named {name!r}")
        into[name] = schema
