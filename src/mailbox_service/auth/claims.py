"""Who a verified portal token stands for: accounts with a role each, the support role, `acr`.

Claims (docs/portal.md, "Token claims"):
- `accounts`: a list of account ids; each one is granted with the `owner` role. This is the
  claim every token had before roles existed, and it keeps meaning what it meant.
- `account_roles`: an object mapping account ids to `reader` or `owner`. A separate object
  claim, so no account id (ids may contain `:` and most other characters) is ever parsed apart.
  An account named in both claims gets the lesser role: a provider that says `reader` anywhere
  has meant to restrict.
- the role `support` in Keycloak's `realm_access.roles` or in a plain `roles` list: read-only
  access to any customer's mailbox (list with `?account=`, detail, download).
- `acr`: how the user signed in; step-up compares it with MAILBOX_AUTH_STEP_UP_ACR.

A token must carry `accounts` or `account_roles`, unless it has the support role.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from mailbox_service.errors import Unauthenticated
from mailbox_service.types import AccountId

MAX_ACCOUNTS = 1000
SUPPORT_ROLE = "support"
OWNER: Literal["owner"] = "owner"
READER: Literal["reader"] = "reader"
AccountRole = Literal["reader", "owner"]
CallerRole = Literal["reader", "owner", "support"]
MAX_ACR_LENGTH = 255

_CLAIMS_ERROR_PREFIX = "token claims are not usable"


class PortalUser(msgspec.Struct, frozen=True):
    """The authenticated portal caller: who, which accounts with which role, and how they
    signed in."""

    sub: str
    accounts: tuple[str, ...]
    """Every account the token grants, with either role, in the token's order."""
    expires_at: dt.datetime | None = None
    readers: frozenset[str] = frozenset()
    """The accounts of `accounts` granted only as `reader`; the others are owned."""
    support: bool = False
    """The support role: read-only access to any account's documents."""
    acr: str | None = None
    """The token's authentication context class (`mfa` after a one-time code, say)."""

    def may_read(self, account_id: str) -> bool:
        """Whether the token grants this account itself (any role; support not counted)."""
        return account_id in self.accounts

    def owns(self, account_id: str) -> bool:
        return account_id in self.accounts and account_id not in self.readers

    @property
    def role(self) -> str | None:
        """The token-wide role for the audit trail: `support`, else None (the per-account
        roles are `role_on`)."""
        return "support" if self.support else None

    def role_on(self, account_id: str) -> CallerRole | None:
        """The role this caller acts in on an account: its own grant first, then support."""
        if account_id in self.accounts:
            return READER if account_id in self.readers else OWNER
        return "support" if self.support else None


def _account_list(raw: Any) -> list[str]:
    try:
        return msgspec.convert(raw, list[AccountId])
    except msgspec.ValidationError as exc:
        raise Unauthenticated(
            f"{_CLAIMS_ERROR_PREFIX}: `accounts` must be a list of account ids ({exc})"
        ) from None


def _account_roles(raw: Any) -> dict[str, AccountRole]:
    try:
        return msgspec.convert(raw, dict[AccountId, AccountRole])
    except msgspec.ValidationError as exc:
        raise Unauthenticated(
            f"{_CLAIMS_ERROR_PREFIX}: `account_roles` must map account ids to "
            f"`reader` or `owner` ({exc})"
        ) from None


def _has_support_role(claims: dict[str, Any]) -> bool:
    realm_access = claims.get("realm_access")
    keycloak_roles = realm_access.get("roles") if isinstance(realm_access, dict) else None
    for roles in (keycloak_roles, claims.get("roles")):
        if isinstance(roles, list) and SUPPORT_ROLE in roles:
            return True
    return False


def user_from(claims: dict[str, Any]) -> PortalUser:
    """The PortalUser of verified claims; Unauthenticated naming the claim that is wrong."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip() or len(sub) > 255:
        raise Unauthenticated(f"{_CLAIMS_ERROR_PREFIX}: `sub` must be a non-empty string")
    support = _has_support_role(claims)
    raw_accounts, raw_roles = claims.get("accounts"), claims.get("account_roles")
    if raw_accounts is None and raw_roles is None and not support:
        raise Unauthenticated(
            f"{_CLAIMS_ERROR_PREFIX}: `accounts` must be a list of account ids "
            "(or `account_roles` an object of them)"
        )
    owned = _account_list(raw_accounts) if raw_accounts is not None else []
    roles = _account_roles(raw_roles) if raw_roles is not None else {}
    # dict.fromkeys keeps the token's order while dropping repeats.
    accounts = tuple(dict.fromkeys([*owned, *roles]))
    if len(accounts) > MAX_ACCOUNTS:
        raise Unauthenticated(f"{_CLAIMS_ERROR_PREFIX}: more than {MAX_ACCOUNTS} accounts")
    acr = claims.get("acr")
    if acr is not None and (not isinstance(acr, str) or len(acr) > MAX_ACR_LENGTH):
        raise Unauthenticated(f"{_CLAIMS_ERROR_PREFIX}: `acr` must be a short string")
    return PortalUser(
        sub=sub,
        accounts=accounts,
        expires_at=dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC),
        readers=frozenset(account for account, role in roles.items() if role == READER),
        support=support,
        acr=acr,
    )
