"""The reference inbox: a small portal that shows how the mailbox API and its events fit.

Served below `/portal` only when `MAILBOX_DEMO_PORTAL=1` (`settings.demo_portal`): a
development sign-in page that mints tokens for the demo users, and an inbox page whose plain
JavaScript calls `/v1/mailbox/...` with the token and listens on Socket.IO. It holds no
server-side session and reads no document itself: everything the page shows comes through
the public API, exactly as a customer portal would get it.
"""

from mailbox_service.portal.controller import PortalController, portal_handlers

__all__ = ["PortalController", "portal_handlers"]
