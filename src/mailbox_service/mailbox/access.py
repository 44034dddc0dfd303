"""What a portal caller's role lets them do (docs/portal.md, "Roles"), as checks that raise.

- `reader` on an account: list, read and download its documents, mark them read, archive them,
  see its preferences.
- `owner`: all of that, and change the preferences (paperless consent, email, locale).
- `support` (a realm role, not per account): list (naming `?account=`), read and download any
  account's documents; nothing that changes state and no preferences.
- A sensitive document type's content also needs a step-up sign-in (`acr`).

An account the caller has no role on stays a 404, as before; a 403 is only ever answered about
an account or document the caller may already see, and names the role that is missing.
"""

from __future__ import annotations

from collections.abc import Set

from mailbox_service.auth.claims import PortalUser
from mailbox_service.doctypes.registry import DocumentTypeRegistry
from mailbox_service.errors import Forbidden, NotFound, StepUpRequired

# What a 403 means on each kind of route, for the OpenAPI document.
READ_ONLY_403 = {403: "The support role is read-only (`reader` or `owner` needed)."}
PREFERENCES_403 = {403: "The support role cannot see preferences."}
CHANGE_PREFERENCES_403 = {403: "The `owner` role is needed (the token grants `reader`)."}
STEP_UP_403 = {
    403: "`step_up_required`: the type is sensitive and the token's `acr` is not a step-up one."
}


def may_view(user: PortalUser, account_id: str) -> bool:
    """List, read and download: any own role, or support."""
    return user.may_read(account_id) or user.support


def require_preferences_access(user: PortalUser, account_id: str) -> None:
    """Seeing preferences needs an own role on the account; support never sees them."""
    if user.may_read(account_id):
        return
    if user.support:
        raise Forbidden(
            f"preferences: the support role cannot see preferences; the `reader` or `owner` "
            f"role on account {account_id} is needed"
        )
    raise NotFound("no such account")


def require_owner(user: PortalUser, account_id: str) -> None:
    """Changing preferences needs `owner` (after `require_preferences_access`)."""
    if not user.owns(account_id):
        raise Forbidden(
            f"preferences: changing them needs the `owner` role on account {account_id}; "
            "the token grants `reader`"
        )


def require_own_account(user: PortalUser, account_id: str) -> None:
    """Marking read or archiving needs an own role; support is read-only."""
    if not user.may_read(account_id):
        raise Forbidden(
            "the support role is read-only: marking read or archiving needs the `reader` or "
            "`owner` role on the document's account"
        )


def require_step_up(
    user: PortalUser, registry: DocumentTypeRegistry, type_name: str, accepted_acr: Set[str]
) -> None:
    """A sensitive type's content needs a token whose `acr` is one of `accepted_acr`. A type
    no installed plugin knows any more counts as sensitive: we cannot tell, so we ask more."""
    sensitive = registry.get(type_name).sensitive if type_name in registry else True
    if not sensitive or (user.acr is not None and user.acr in accepted_acr):
        return
    wanted = ", ".join(sorted(accepted_acr)) or "(none configured)"
    raise StepUpRequired(
        f"content: documents of type {type_name} need a step-up sign-in (acr {wanted}); "
        f"this token's acr is {user.acr or 'absent'}"
    )
