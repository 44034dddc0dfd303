"""One error hierarchy for the whole service.

The API maps these to status codes in one place (`server/errors.py`); the CLI prints their
message as one line. Messages are written for the person who has to act on them.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """The root of every exception this project defines: `except ServiceError` catches ours
    and nothing else.

    Errors meant for whoever called us (an HTTP status, a CLI exit code) are `MailboxError`s.
    The other subclasses are signals between our own modules that the caller handles (a
    delivery that failed, a duplicate source_ref, a blob that changed under a backup).
    """


class MailboxError(ServiceError):
    """An error the service reports to its caller: the API answers `status_code`, the CLI
    exits with `exit_code`."""

    status_code: int = 500
    exit_code: int = 1

    def __init__(
        self, message: str, *, field: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}


class ConfigurationError(MailboxError):
    """A setting is missing or malformed; the service cannot start."""

    exit_code = 2


class PrerequisiteMissing(MailboxError):
    """A tool the local stack needs (Go, apt, a free port) is not available."""

    exit_code = 2


class BadRequest(MailboxError):
    """The request itself is malformed (broken multipart, unparsable JSON, bad parameter)."""

    status_code = 400


class Unauthenticated(MailboxError):
    """No credentials, or credentials we do not accept."""

    status_code = 401


class Forbidden(MailboxError):
    """Authenticated, but not allowed to do this."""

    status_code = 403


class StepUpRequired(Forbidden):
    """The document's type is sensitive: its content needs a stronger sign-in (`acr`); the
    client signs the user in again with a one-time code and retries (code `step_up_required`)."""


class NotFound(MailboxError):
    """The thing does not exist, or the caller may not know that it does."""

    status_code = 404


class Conflict(MailboxError):
    """The request contradicts what is stored (same source_ref, other content)."""

    status_code = 409


class Gone(MailboxError):
    """The thing existed but was deleted on purpose (a purged or erased document); the message
    says when and why."""

    status_code = 410


class PayloadTooLarge(MailboxError):
    """The upload is over the configured maximum."""

    status_code = 413


class UnsupportedContent(MailboxError):
    """The file's bytes are not a content type the document type accepts."""

    status_code = 415


class InvalidMetadata(MailboxError):
    """Metadata failed validation; `field` names the path, e.g. `attributes.due_date`."""

    status_code = 422


class RateLimited(MailboxError):
    """The caller used up a rate budget; `retry_after_s` says when the next request may pass."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotConfigured(MailboxError):
    """A feature needs a setting the operator has not given (the message names it)."""

    status_code = 503


class DependencyUnavailable(MailboxError):
    """A backing service (MongoDB, MinIO, Redis, SMTP) did not answer."""

    status_code = 503
