"""Routes of the reference portal below `/portal`: sign-in, the inbox page, static files.

wiring/app.py registers `portal_handlers()` only when `settings.demo_portal` is true; when it
is off, nothing answers below /portal (404).

The sign-in page is for development only: anyone who can reach it can become any demo user.
It mints the token with `mint_token`, the function behind `mailbox-service tokens mint`, and
hands it to the inbox in the URL fragment, which browsers never send to a server (so it stays
out of access logs and Referer headers). The inbox script moves it into localStorage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from mailbox_service.auth.tokens import mint_token
from mailbox_service.errors import ConfigurationError
from mailbox_service.log import get_logger
from mailbox_service.portal.demo_users import DEMO_USERS, demo_user
from mailbox_service.portal.pages import BASE_PATH, STATIC_DIR, STATIC_PATH, PageRenderer
from mailbox_service.server.deps import provided
from mailbox_service.settings import Settings

log = get_logger(__name__)

TOKEN_TTL_S = 3600
"""Lifetime of a sign-in token: the default of `tokens mint`."""

SIGN_IN_MESSAGES = {
    "expired": "Your session has expired. Please sign in again.",
    "invalid": "Your sign-in is no longer accepted. Please sign in again.",
    "signed-out": "You have signed out.",
}
# Where a sign-in may send the browser afterwards: a page of this portal, nothing else (an
# open redirect would hand the token, in the fragment, to whichever site it named).
_NEXT_PATH = re.compile(rf"^{BASE_PATH}(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?$")


@dataclass(frozen=True, slots=True)
class PortalServices:
    """What the demo portal's pages use, built once by the composition root (wiring/): one
    renderer per process, since it digests the static files once."""

    pages: PageRenderer
    settings: Settings


PortalServicesDep = NamedDependency[PortalServices]


def safe_next(path: str | None) -> str:
    return path if path and _NEXT_PATH.fullmatch(path) else f"{BASE_PATH}/"


def provide_pages(services: PortalServicesDep) -> PageRenderer:
    return services.pages


PagesDep = NamedDependency[PageRenderer]


def _users_by_sub() -> dict[str, str]:
    return {user.sub: user.name for user in DEMO_USERS}


class PortalController(Controller):
    path = BASE_PATH
    include_in_schema = False
    dependencies = {
        "services": provided(PortalServices),
        "pages": Provide(provide_pages, sync_to_thread=False),
    }

    @get("/", operation_id="portalInbox")
    async def inbox(self, pages: PagesDep) -> Response[str]:
        """The inbox page; its script signs in again when it holds no valid token."""
        return pages.render("inbox.html", config=pages.config_json(names=_users_by_sub()))

    @get("/documents/{document_id:str}", operation_id="portalDocument")
    async def document(self, pages: PagesDep, document_id: FromPath[str]) -> Response[str]:
        """The inbox with one document opened: where notification emails link to."""
        config = pages.config_json(names=_users_by_sub(), openDocument=document_id)
        return pages.render("inbox.html", config=config)

    @get("/sign-in", operation_id="portalSignInPage")
    async def sign_in_page(
        self,
        pages: PagesDep,
        reason: FromQuery[str | None] = None,
        next: FromQuery[str | None] = None,
    ) -> Response[str]:
        """Choose a demo user; `reason` says why the inbox sent you here."""
        return pages.render(
            "sign_in.html",
            users=DEMO_USERS,
            notice=SIGN_IN_MESSAGES.get(reason or ""),
            error=None,
            next=safe_next(next),
            selected=None,
        )

    @post("/sign-in", operation_id="portalSignIn", status_code=303)
    async def sign_in(
        self,
        pages: PagesDep,
        services: PortalServicesDep,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[str]:
        """Mint a token for the chosen demo user and go to the inbox with it."""
        user = demo_user(data.get("user", ""))
        next_path = safe_next(data.get("next"))
        if user is None:
            return pages.render(
                "sign_in.html",
                status_code=400,
                users=DEMO_USERS,
                notice=None,
                error="Choose one of the demo users to sign in.",
                next=next_path,
                selected=None,
            )
        try:
            auth = services.settings.auth
            ttl_s = min(TOKEN_TTL_S, auth.max_token_lifetime_s)
            token = mint_token(auth, user.sub, user.accounts, ttl_s=ttl_s)
        except ConfigurationError as exc:
            return pages.render(
                "sign_in.html",
                status_code=503,
                users=DEMO_USERS,
                notice=None,
                error=f"Sign-in is not available: {exc.message}.",
                next=next_path,
                selected=user.sub,
            )
        log.info("portal.signed_in", sub=user.sub)
        return Response(
            "",
            status_code=303,
            media_type=MediaType.TEXT,
            headers={"Location": f"{next_path}#access_token={token}", "Cache-Control": "no-store"},
        )


def portal_handlers() -> list[ControllerRouterHandler]:
    """Everything the portal serves: pages and their static files."""
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="portal-static",
        include_in_schema=False,
        cache_control=CacheControlHeader(no_cache=True),
    )
    return [PortalController, static]
