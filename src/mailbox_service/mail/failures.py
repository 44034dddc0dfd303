"""How a delivery attempt can end badly, and whether trying again could help.

The delivery code raises these; the worker turns them into outbox states: a transient failure
is retried with backoff until `notify.max_attempts`, a permanent one is `failed` at once, and a
skip records why the channel does not apply to this document.
"""

from __future__ import annotations

from mailbox_service.errors import ServiceError


class DeliveryFailure(ServiceError):
    """A delivery attempt did not succeed; `message` is what operators see as `error`."""

    permanent: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientFailure(DeliveryFailure):
    """The relay or Redis is down, slow or says "try later" (4xx): retry with backoff."""

    permanent = False


class PermanentFailure(DeliveryFailure):
    """Retrying cannot help: a 5xx for the address, a template that does not render."""

    permanent = True


class RelayRefused(PermanentFailure):
    """The relay refused this message or its recipient for good (5xx to RCPT or DATA): the
    customer cannot be reached at this address, so the document goes to print."""


class NotApplicable(ServiceError):
    """The channel does not apply to this document (no address, printed): status `skipped`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
