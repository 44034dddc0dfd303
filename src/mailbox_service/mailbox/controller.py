"""HTTP door of the portal: `/v1/mailbox/...` for a customer holding a portal JWT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import Body, FromPath, Parameter
from litestar.response import Stream

from mailbox_service.audit import AuditTrail
from mailbox_service.audit.http import record_portal
from mailbox_service.auth.providers import CredentialStores, PortalUserDep, provide_portal_user
from mailbox_service.doctypes import DocumentTypeRegistry
from mailbox_service.mailbox import access, content, contract
from mailbox_service.mailbox.filters import DEFAULT_LIMIT, MAX_LIMIT, parse_filters
from mailbox_service.mailbox.schemas import (
    DocumentDetail,
    DocumentPage,
    Preferences,
    UnreadCount,
    detail_from,
)
from mailbox_service.mailbox.service import MailboxService, decode_preferences
from mailbox_service.server.deps import provided
from mailbox_service.server.errors import error_body
from mailbox_service.server.openapi import errors, response
from mailbox_service.settings import Settings
from mailbox_service.storage.blobs import BlobStore
from mailbox_service.storage.stored_document import StoredDocument

DOCUMENT = "/documents/{document_id:str}"

# Headers every file response carries: the type we sniffed at ingest is the only truth, and
# a sandbox keeps a hostile file from running script if a browser renders it anyway.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    # Bank and health documents: no cache, shared or private, keeps a copy; ETag/304 still
    # spares a client that re-asks while it has the file open.
    "Cache-Control": "no-store",
    "Accept-Ranges": "bytes",
}


@dataclass(frozen=True, slots=True)
class MailboxServices:
    """What the portal's mailbox routes use, built once by the composition root (wiring/)."""

    mailbox: MailboxService
    registry: DocumentTypeRegistry
    blobs: BlobStore
    settings: Settings
    audit: AuditTrail
    credentials: CredentialStores


MailboxServicesDep = NamedDependency[MailboxServices]


class MailboxController(Controller):
    path = "/v1/mailbox"
    tags = ["mailbox"]
    dependencies = {"services": provided(MailboxServices), "user": Provide(provide_portal_user)}
    security = [{"portalJwt": []}]

    @get(
        "/documents",
        operation_id="listMailboxDocuments",
        responses=errors(400, 401, 429, 503),
        opt=contract.LIST,
    )
    async def list_documents(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        account: Annotated[str | None, Parameter(description="Only this account.")] = None,
        type: Annotated[str | None, Parameter(description="Only this document type.")] = None,
        unread: Annotated[
            bool | None, Parameter(description="true: unread only; false: read only.")
        ] = None,
        archived: Annotated[
            bool | None, Parameter(description="false (default): the inbox; true: the archive.")
        ] = None,
        issued_from: Annotated[
            str | None, Parameter(description="Issued at or after: a date or an RFC 3339 time.")
        ] = None,
        issued_to: Annotated[
            str | None, Parameter(description="Issued before this time; a date includes its day.")
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_LIMIT, description="Page size.")
        ] = DEFAULT_LIMIT,
        cursor: Annotated[
            str | None, Parameter(description="`next_cursor` of the previous page.")
        ] = None,
    ) -> DocumentPage:
        """The caller's documents, newest first, one page at a time."""
        filters = parse_filters(
            services.registry,
            account=account,
            type=type,
            unread=unread,
            archived=archived,
            issued_from=issued_from,
            issued_to=issued_to,
        )
        page = await services.mailbox.page(user, filters, limit=limit, cursor=cursor)
        asked = {"account": account, "type": type, "unread": unread, "archived": archived}
        details = {k: v for k, v in asked.items() if v is not None}
        await record_portal(
            request,
            services,
            user,
            "mailbox.listed",
            account_id=account,
            details={**details, "items": len(page.items), "more": page.next_cursor is not None},
        )
        return page

    @get(DOCUMENT, operation_id="getMailboxDocument", responses=errors(401, 404, 429, 503))
    async def get_document(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
    ) -> DocumentDetail:
        """One document with all its attributes."""
        doc = await services.mailbox.get(user, document_id)
        await _record_document(request, services, user, "document.read", doc, {"view": "detail"})
        return detail_from(doc)

    @get(
        f"{DOCUMENT}/content",
        operation_id="downloadMailboxDocument",
        responses={
            206: response("One byte range of the file.", media_type="application/octet-stream"),
            304: response("The client's copy (`If-None-Match`) is current."),
            **errors(400, 401, 403, 404, 416, 429, 503, notes=access.STEP_UP_403),
        },
        opt=contract.DOWNLOAD,
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
        disposition: Annotated[
            content.Disposition, Parameter(description="attachment (default) or inline.")
        ] = "attachment",
    ) -> Response[Any]:
        """The file, streamed; supports ETag/If-None-Match and a single byte Range."""
        doc = await services.mailbox.get(user, document_id)
        access.require_step_up(
            user, services.registry, doc.type, services.settings.auth.step_up_acr_values
        )
        blob = doc.blob
        etag = content.etag_for(blob.sha256)
        headers = {**FILE_HEADERS, "ETag": etag}
        if content.not_modified(request.headers.get("if-none-match"), etag):
            await _record_document(
                request, services, user, "document.downloaded", doc, {"status": 304}
            )
            return Response(b"", status_code=304, headers=headers)
        size = blob.size
        wanted = (
            content.parse_range(request.headers.get("range"), size)
            if content.range_applies(request.headers.get("if-range"), etag)
            else None
        )
        if wanted == content.UNSATISFIABLE:
            return Response(
                error_body(
                    416, "range_not_satisfiable", f"range: the file has {size} bytes", "range"
                ),
                status_code=416,
                headers={**headers, "Content-Range": f"bytes */{size}"},
            )
        headers["Content-Disposition"] = content.content_disposition(
            content.safe_filename(doc.id, doc.title, blob.filename, blob.content_type), disposition
        )
        status, offset, length = 200, 0, size
        if isinstance(wanted, content.ByteRange):
            status, offset, length = 206, wanted.start, wanted.length
            headers["Content-Range"] = wanted.content_range
        headers["Content-Length"] = str(length)
        chunks = await content.open_blob(
            services.blobs, blob.key, offset, length, version_id=blob.version_id
        )
        await services.mailbox.record_download(user, doc)
        await _record_document(
            request,
            services,
            user,
            "document.downloaded",
            doc,
            {"status": status, "offset": offset, "length": length},
        )
        return Stream(chunks, status_code=status, media_type=blob.content_type, headers=headers)

    @post(
        f"{DOCUMENT}/read",
        operation_id="markMailboxDocumentRead",
        status_code=200,
        responses=errors(401, 403, 404, 429, 503, notes=access.READ_ONLY_403),
    )
    async def mark_read(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
    ) -> DocumentDetail:
        """Mark as read (idempotent: the first read time stays)."""
        doc = await services.mailbox.mark_read(user, document_id, True)
        await _record_document(request, services, user, "document.read", doc, {"marked": "read"})
        return detail_from(doc)

    @delete(
        f"{DOCUMENT}/read",
        operation_id="markMailboxDocumentUnread",
        status_code=200,
        responses=errors(401, 403, 404, 429, 503, notes=access.READ_ONLY_403),
    )
    async def mark_unread(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
    ) -> DocumentDetail:
        """Mark as unread again; `first_read_at` keeps the first read for the record."""
        doc = await services.mailbox.mark_read(user, document_id, False)
        await _record_document(request, services, user, "document.read", doc, {"marked": "unread"})
        return detail_from(doc)

    @post(
        f"{DOCUMENT}/archive",
        operation_id="archiveMailboxDocument",
        status_code=200,
        responses=errors(401, 403, 404, 429, 503, notes=access.READ_ONLY_403),
    )
    async def archive(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
    ) -> DocumentDetail:
        """Move to the archive (hidden from the default list)."""
        doc = await services.mailbox.mark_archived(user, document_id, True)
        await _record_document(
            request, services, user, "document.archived", doc, {"archived": True}
        )
        return detail_from(doc)

    @delete(
        f"{DOCUMENT}/archive",
        operation_id="unarchiveMailboxDocument",
        status_code=200,
        responses=errors(401, 403, 404, 429, 503, notes=access.READ_ONLY_403),
    )
    async def unarchive(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
    ) -> DocumentDetail:
        """Back to the inbox."""
        doc = await services.mailbox.mark_archived(user, document_id, False)
        await _record_document(
            request, services, user, "document.archived", doc, {"archived": False}
        )
        return detail_from(doc)

    @get("/unread-count", operation_id="getMailboxUnreadCount", responses=errors(401, 429, 503))
    async def unread_count(self, services: MailboxServicesDep, user: PortalUserDep) -> UnreadCount:
        """Unread documents that are not archived."""
        return await services.mailbox.unread_count(user)

    @get(
        "/accounts/{account_id:str}/preferences",
        operation_id="getAccountPreferences",
        responses=errors(401, 403, 404, 429, 503, notes=access.PREFERENCES_403),
    )
    async def get_preferences(
        self, services: MailboxServicesDep, user: PortalUserDep, account_id: FromPath[str]
    ) -> Preferences:
        """Paperless consent, notification email and locale of one of the caller's accounts."""
        return await services.mailbox.preferences(user, account_id)

    @put(
        "/accounts/{account_id:str}/preferences",
        operation_id="updateAccountPreferences",
        responses=errors(
            400, 401, 403, 404, 413, 422, 429, 503, notes=access.CHANGE_PREFERENCES_403
        ),
        opt=contract.PREFERENCES_UPDATE,
    )
    async def put_preferences(
        self,
        request: Request[Any, Any, Any],
        services: MailboxServicesDep,
        user: PortalUserDep,
        account_id: FromPath[str],
        data: Annotated[
            dict[str, Any],
            Body(description="Any of `paperless` (bool), `email`, `locale` (null clears them)."),
        ],
    ) -> Preferences:
        """Change preferences; consent changes are recorded with time and the token's `sub`."""
        update = decode_preferences(data)
        before = await services.mailbox.preferences(user, account_id)
        after = await services.mailbox.update_preferences(user, account_id, update)
        # The whole change, every time: the account keeps only the latest consent changes.
        changed = [f for f in PREFERENCE_FIELDS if getattr(before, f) != getattr(after, f)]
        await record_portal(
            request,
            services,
            user,
            "preferences.changed",
            account_id=account_id,
            details={
                "before": {f: getattr(before, f) for f in changed},
                "after": {f: getattr(after, f) for f in changed},
            },
        )
        return after


PREFERENCE_FIELDS = ("paperless", "email", "locale")


async def _record_document(
    request: Request[Any, Any, Any],
    services: MailboxServicesDep,
    user: PortalUserDep,
    action: str,
    doc: StoredDocument,
    details: dict[str, Any],
) -> None:
    await record_portal(
        request,
        services,
        user,
        action,
        account_id=doc.account_id,
        document_id=doc.id,
        details=details,
    )
