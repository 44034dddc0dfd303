"""HTTP door of the portal: `/v1/mailbox/...` for a customer holding a portal JWT."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import Provide
from litestar.params import Body, FromPath, Parameter
from litestar.response import Stream

from mailbox_service.mailbox import access, content
from mailbox_service.mailbox.filters import DEFAULT_LIMIT, MAX_LIMIT, parse_filters
from mailbox_service.mailbox.schemas import (
    DocumentDetail,
    DocumentPage,
    Preferences,
    UnreadCount,
    detail_from,
)
from mailbox_service.mailbox.service import decode_preferences
from mailbox_service.server.deps import PortalUserDep, ServicesDep
from mailbox_service.server.errors import error_body
from mailbox_service.server.portal_auth.guard import provide_portal_user

DOCUMENT = "/documents/{document_id:str}"

# Headers every file response carries: the type we sniffed at ingest is the only truth, and
# a sandbox keeps a hostile file from running script if a browser renders it anyway.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
    "Cache-Control": "private, no-cache",
    "Accept-Ranges": "bytes",
}


class MailboxController(Controller):
    path = "/v1/mailbox"
    tags = ["mailbox"]
    dependencies = {"user": Provide(provide_portal_user)}
    security = [{"portalJwt": []}]

    @get("/documents", operation_id="listMailboxDocuments")
    async def list_documents(
        self,
        services: ServicesDep,
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
        return await services.mailbox.page(user, filters, limit=limit, cursor=cursor)

    @get(DOCUMENT, operation_id="getMailboxDocument")
    async def get_document(
        self, services: ServicesDep, user: PortalUserDep, document_id: FromPath[str]
    ) -> DocumentDetail:
        """One document with all its attributes."""
        return detail_from(await services.mailbox.get(user, document_id))

    @get(f"{DOCUMENT}/content", operation_id="downloadMailboxDocument")
    async def download(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        user: PortalUserDep,
        document_id: FromPath[str],
        disposition: Annotated[
            content.Disposition, Parameter(description="attachment (default) or inline.")
        ] = "attachment",
    ) -> Response[Any]:
        """The file, streamed; supports ETag/If-None-Match and a single byte Range."""
        doc = await services.mailbox.get(user, document_id)
        access.require_step_up(
            user, services.registry, doc["type"], services.settings.auth.step_up_acr_values
        )
        blob = doc["blob"]
        etag = content.etag_for(blob["sha256"])
        headers = {**FILE_HEADERS, "ETag": etag}
        if content.not_modified(request.headers.get("if-none-match"), etag):
            return Response(b"", status_code=304, headers=headers)
        size = int(blob["size"])
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
            content.safe_filename(doc), disposition
        )
        status, offset, length = 200, 0, size
        if isinstance(wanted, content.ByteRange):
            status, offset, length = 206, wanted.start, wanted.length
            headers["Content-Range"] = wanted.content_range
        headers["Content-Length"] = str(length)
        chunks = await content.open_blob(services.blobs, blob["key"], offset, length)
        await services.mailbox.record_download(doc)
        return Stream(chunks, status_code=status, media_type=blob["content_type"], headers=headers)

    @post(f"{DOCUMENT}/read", operation_id="markMailboxDocumentRead", status_code=200)
    async def mark_read(
        self, services: ServicesDep, user: PortalUserDep, document_id: FromPath[str]
    ) -> DocumentDetail:
        """Mark as read (idempotent: the first read time stays)."""
        return detail_from(await services.mailbox.mark_read(user, document_id, True))

    @delete(f"{DOCUMENT}/read", operation_id="markMailboxDocumentUnread", status_code=200)
    async def mark_unread(
        self, services: ServicesDep, user: PortalUserDep, document_id: FromPath[str]
    ) -> DocumentDetail:
        """Mark as unread again; `first_read_at` keeps the first read for the record."""
        return detail_from(await services.mailbox.mark_read(user, document_id, False))

    @post(f"{DOCUMENT}/archive", operation_id="archiveMailboxDocument", status_code=200)
    async def archive(
        self, services: ServicesDep, user: PortalUserDep, document_id: FromPath[str]
    ) -> DocumentDetail:
        """Move to the archive (hidden from the default list)."""
        return detail_from(await services.mailbox.mark_archived(user, document_id, True))

    @delete(f"{DOCUMENT}/archive", operation_id="unarchiveMailboxDocument", status_code=200)
    async def unarchive(
        self, services: ServicesDep, user: PortalUserDep, document_id: FromPath[str]
    ) -> DocumentDetail:
        """Back to the inbox."""
        return detail_from(await services.mailbox.mark_archived(user, document_id, False))

    @get("/unread-count", operation_id="getMailboxUnreadCount")
    async def unread_count(self, services: ServicesDep, user: PortalUserDep) -> UnreadCount:
        """Unread documents that are not archived."""
        return await services.mailbox.unread_count(user)

    @get("/accounts/{account_id:str}/preferences", operation_id="getAccountPreferences")
    async def get_preferences(
        self, services: ServicesDep, user: PortalUserDep, account_id: FromPath[str]
    ) -> Preferences:
        """Paperless consent, notification email and locale of one of the caller's accounts."""
        return await services.mailbox.preferences(user, account_id)

    @put("/accounts/{account_id:str}/preferences", operation_id="updateAccountPreferences")
    async def put_preferences(
        self,
        services: ServicesDep,
        user: PortalUserDep,
        account_id: FromPath[str],
        data: Annotated[
            dict[str, Any],
            Body(description="Any of `paperless` (bool), `email`, `locale` (null clears them)."),
        ],
    ) -> Preferences:
        """Change preferences; consent changes are recorded with time and the token's `sub`."""
        update = decode_preferences(data)
        return await services.mailbox.update_preferences(user, account_id, update)
