"""Where schemathesis needs a hand: what a JSON Schema cannot say about a valid request.

Only valid (positive) cases are steered, and only in these ways; invalid (negative) cases are
sent exactly as schemathesis generates them.

- Byte ranges: a `Range` the file does not have is 416 by RFC 9110; valid cases ask for one
  the seeded files have.
- Existing things: half of the document ids and account ids become ones the portal token can
  see, so reads, downloads, ranges and preferences reach real data, not only 404.
- File bytes: the ingest `file` part becomes a real PDF (the schema says "binary"; the server
  sniffs the bytes and answers 415 for anything that is not a type's accepted content).
- Server-issued values: a `cursor` is an HMAC-signed token bound to its filters; a generated
  one is never valid, so valid cases go without one.
- Webhook endpoints: a URL must resolve to an address the SSRF policy allows, so valid cases
  name a local one (nothing listens there; a test event is answered "connection refused").
- Rules between two values: `issued_to` after `issued_from`, a stats window of at most 366
  days ending in the past... and an invoice's billing period ending after it starts.
- Status updates: the valid `status` depends on the document's type, so valid cases update a
  seeded invoice (by id or source_ref) with one of the invoice's statuses, and a `status_at`
  that is not ahead of the server's clock; a change feed `since` that the coverage phase
  makes up outside its pattern is left out.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from requests.structures import CaseInsensitiveDict
from schemathesis import GenerationMode

from app_fixtures import sample_pdf
from mailbox_service.senders.feed import CURSOR_PATTERN

STATUS_UPDATES = {"updateDocumentStatus", "updateDocumentStatusBySourceRef"}
INVOICE_STATUSES = ("cancelled", "open", "overdue", "paid")
CURSOR = re.compile(f"^({CURSOR_PATTERN.strip('^$')})?$")


@dataclass(frozen=True)
class Credentials:
    ingest_key: str
    admin_key: str
    portal_jwt: str
    account: str


@dataclass(frozen=True)
class Seeds:
    document_ids: list[str]
    smallest_file: int
    """Bytes in the smallest seeded file: a range below it is satisfiable for all of them."""
    source_refs: list[str] = field(default_factory=list)
    """The seeded invoices' `source_ref`s (the same order as `document_ids`)."""


def _pick(value: Any, choices: list[str]) -> Any:
    """Deterministically swap about half of the generated values for one of `choices`."""
    digest = zlib.crc32(repr(value).encode())
    return choices[digest // 2 % len(choices)] if digest % 2 == 0 else value


def _instant(raw: Any, *, end_of_day: bool) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        if len(raw) == 10:
            start = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
            return start + dt.timedelta(days=1) if end_of_day else start
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _operation_id(case: schemathesis.Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def _credential(case: schemathesis.Case[Any], credentials: Credentials) -> str | None:
    """The credential an operation's security requirement names (scheme and scope)."""
    for requirement in case.operation.definition.raw.get("security") or []:
        for scheme, scopes in requirement.items():
            if scheme == "portalJwt":
                return credentials.portal_jwt
            if scheme == "apiKey":
                return credentials.admin_key if "admin" in scopes else credentials.ingest_key
    return None


def steer(schema: Any, credentials: Credentials, seeds: Seeds) -> None:
    class BearerOfTheRightKind:
        def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str | None:
            return _credential(case, credentials)

        def set(
            self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext
        ) -> None:
            headers = CaseInsensitiveDict(case.headers or {})
            headers["Authorization"] = f"Bearer {data}"
            case.headers = headers

    schema.auth(refresh_interval=None, retry_on=[])(BearerOfTheRightKind)

    @schema.hook
    def map_case(
        context: schemathesis.HookContext, case: schemathesis.Case[Any]
    ) -> schemathesis.Case[Any]:
        return _steered(case, credentials, seeds)

    @schema.hook
    def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
        return _in_contract(case)

    # The examples phase builds its cases without the two hooks above.
    @schema.hook
    def before_add_examples(
        context: schemathesis.HookContext, examples: list[schemathesis.Case[Any]]
    ) -> None:
        examples[:] = [
            _steered(case, credentials, seeds) for case in examples if _in_contract(case)
        ]


def _steered(
    case: schemathesis.Case[Any], credentials: Credentials, seeds: Seeds
) -> schemathesis.Case[Any]:
    """A positive case aimed at seeded data, a satisfiable range and values the rules accept."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    operation = _operation_id(case)
    path = case.path_parameters or {}
    if "document_id" in path and operation != "resendNotification":
        path["document_id"] = _pick(path["document_id"], seeds.document_ids)
    if "account_id" in path:
        path["account_id"] = _pick(path["account_id"], [credentials.account])
    headers: MutableMapping[str, Any] = case.headers or {}
    if operation == "downloadMailboxDocument" and "Range" in headers:
        headers["Range"] = _satisfiable(headers["Range"], seeds.smallest_file)
    query = case.query or {}
    if operation in {"listMailboxDocuments", "listNotifications", "listAuditEntries"}:
        query.pop("cursor", None)
    if operation in STATUS_UPDATES:
        _steer_status_update(case, operation, seeds)
    if operation == "listDocumentChanges" and not CURSOR.match(str(query.get("since", ""))):
        query.pop("since", None)
    if operation == "createWebhook" and isinstance(case.body, dict):
        _reachable_subscription(case.body)
    if operation == "ingestDocument" and isinstance(case.body, dict):
        body: dict[str, Any] = case.body  # a multipart body: its file part is bytes
        body["file"] = sample_pdf()
        metadata = body.get("metadata")
        if isinstance(metadata, dict):
            _order_billing_period(metadata)
    return case


def _in_contract(case: schemathesis.Case[Any]) -> bool:
    """False for a valid case that breaks a rule between two values."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return True
    query = case.query or {}
    operation = _operation_id(case)
    if operation == "listMailboxDocuments":
        start = _instant(query.get("issued_from"), end_of_day=False)
        end = _instant(query.get("issued_to"), end_of_day=True)
        return start is None or end is None or end > start
    if operation == "notificationStats":
        now = dt.datetime.now(dt.UTC)
        until = _instant(query.get("until"), end_of_day=False) or now
        since = _instant(query.get("since"), end_of_day=False) or until - dt.timedelta(days=7)
        return since < until and until - since <= dt.timedelta(days=366)
    return True


def _steer_status_update(case: schemathesis.Case[Any], operation: str, seeds: Seeds) -> None:
    """A seeded invoice, an invoice status, a `status_at` in the past."""
    seed = zlib.crc32(repr(case.body).encode()) % len(seeds.document_ids)
    if operation == "updateDocumentStatus" and case.path_parameters is not None:
        case.path_parameters["document_id"] = seeds.document_ids[seed]
    elif case.query is not None:
        case.query["source_ref"] = seeds.source_refs[seed]
    if not isinstance(case.body, dict):
        return
    status = case.body.get("status")
    if status not in INVOICE_STATUSES:
        case.body["status"] = INVOICE_STATUSES[zlib.crc32(repr(status).encode()) % 4]
    when = _instant(case.body.get("status_at"), end_of_day=False)
    if when is None or when > dt.datetime.now(dt.UTC):
        case.body["status_at"] = "2026-01-01T00:00:00Z"


def _reachable_subscription(body: dict[str, Any]) -> None:
    """A webhook endpoint the service accepts: its URL must resolve to an allowed address
    (a generated host name resolves nowhere), its events be known types, its source a name."""
    body["url"] = "http://127.0.0.1:9/contract-receiver"
    body["events"] = ["*"]
    source = body.get("source")
    if not isinstance(source, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", source):
        body["source"] = "contract-source"


def _satisfiable(value: Any, size: int) -> Any:
    """A byte range the file has (RFC 9110 answers 416 for one outside it) for `bytes=` ranges;
    anything else (other units, several ranges, garbage) gets the whole file and stays."""
    if not isinstance(value, str) or not value.startswith("bytes="):
        return value
    first, _, last = value.removeprefix("bytes=").partition("-")
    if first.isdigit() and int(first) >= size:
        return "bytes=0-9"
    if not first and last.isdigit() and int(last) == 0:
        return "bytes=-10"
    return value


def _order_billing_period(metadata: dict[str, Any]) -> None:
    attributes = metadata.get("attributes")
    period = attributes.get("billing_period") if isinstance(attributes, dict) else None
    if isinstance(period, dict) and isinstance(period.get("start"), str):
        start, end = period["start"], period.get("end")
        if isinstance(end, str) and end < start:
            period["start"], period["end"] = end, start
