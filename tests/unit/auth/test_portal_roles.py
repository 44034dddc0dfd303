"""Roles, support and step-up from token claims (claims.py, mailbox/access.py), without servers.

The same rules run against a real Keycloak in tests/integration/auth/test_identity_provider.py.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from mailbox_service.auth.claims import PortalUser, user_from
from mailbox_service.doctypes.base import DocumentType
from mailbox_service.doctypes.registry import DocumentTypeRegistry, builtin_types
from mailbox_service.errors import Forbidden, NotFound, StepUpRequired, Unauthenticated
from mailbox_service.mailbox import access


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "u1", "exp": int(time.time()) + 600, **extra}


class Secret(msgspec.Struct):
    note: str


class HealthRecord(DocumentType):
    name = "health_record"
    label = "Health record"
    attributes = Secret
    sensitive = True


REGISTRY = DocumentTypeRegistry([*builtin_types(), HealthRecord()])
STEP_UP = frozenset({"mfa", "hwk"})


def test_a_plain_account_list_grants_owner_as_before() -> None:
    user = user_from(claims(accounts=["A1", "A2"]))
    assert user.accounts == ("A1", "A2")
    assert user.owns("A1")
    assert user.role_on("A2") == "owner"
    assert user.role_on("B") is None
    assert not user.support
    assert user.role is None


def test_account_roles_is_an_object_so_ids_with_colons_stay_whole() -> None:
    user = user_from(claims(account_roles={"LEW:1:reader": "owner", "X:owner": "reader"}))
    assert user.accounts == ("LEW:1:reader", "X:owner")
    assert user.role_on("LEW:1:reader") == "owner"
    assert user.role_on("X:owner") == "reader"
    assert user.may_read("X:owner")
    assert not user.owns("X:owner")


def test_an_account_in_both_claims_gets_the_lesser_role() -> None:
    user = user_from(claims(accounts=["A1", "A2"], account_roles={"A1": "reader", "A3": "owner"}))
    assert user.accounts == ("A1", "A2", "A3")
    assert user.role_on("A1") == "reader"
    assert user.role_on("A3") == "owner"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"account_roles": {"A1": "admin"}}, "account_roles"),
        ({"account_roles": ["A1"]}, "account_roles"),
        ({"account_roles": {"bad id": "owner"}}, "account_roles"),
        ({}, "accounts"),
        ({"accounts": None}, "accounts"),
        ({"accounts": ["A1"], "acr": 2}, "acr"),
    ],
)
def test_unusable_role_claims_are_401_naming_the_claim(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        user_from(claims(**extra))
    assert f"`{named}`" in refused.value.message


@pytest.mark.parametrize(
    "extra",
    [{"realm_access": {"roles": ["offline_access", "support"]}}, {"roles": ["support"]}],
)
def test_support_comes_from_keycloak_realm_roles_or_a_plain_roles_list(
    extra: dict[str, Any],
) -> None:
    user = user_from(claims(**extra))  # no accounts needed
    assert user.support
    assert user.accounts == ()
    assert user.role_on("ANY") == "support"
    assert user.role == "support"  # what the audit trail records for the caller
    assert access.may_view(user, "ANY")


def test_a_role_named_support_elsewhere_is_not_the_support_role() -> None:
    sneaky = claims(accounts=["A1"], resource_access={"x": {"roles": ["support"]}})
    assert not user_from(sneaky).support
    assert not user_from(claims(accounts=["A1"], realm_access={"roles": "support"})).support


def test_preferences_need_an_own_role_and_changes_need_owner() -> None:
    reader = user_from(claims(account_roles={"A1": "reader"}))
    access.require_preferences_access(reader, "A1")
    with pytest.raises(Forbidden, match="`owner` role on account A1"):
        access.require_owner(reader, "A1")
    with pytest.raises(NotFound):  # not theirs: as invisible as before
        access.require_preferences_access(reader, "B1")
    support = PortalUser(sub="s", accounts=(), support=True)
    with pytest.raises(Forbidden, match="support role cannot see preferences"):
        access.require_preferences_access(support, "A1")
    with pytest.raises(Forbidden, match="read-only"):
        access.require_own_account(support, "A1")


def test_step_up_applies_to_sensitive_types_only() -> None:
    weak = user_from(claims(accounts=["A1"], acr="pwd"))
    strong = user_from(claims(accounts=["A1"], acr="hwk"))
    access.require_step_up(weak, REGISTRY, "invoice", STEP_UP)
    access.require_step_up(strong, REGISTRY, "health_record", STEP_UP)
    with pytest.raises(StepUpRequired) as refused:
        access.require_step_up(weak, REGISTRY, "health_record", STEP_UP)
    assert "acr hwk, mfa" in refused.value.message
    assert "acr is pwd" in refused.value.message
    assert refused.value.status_code == 403


def test_a_type_no_plugin_knows_is_treated_as_sensitive() -> None:
    weak = user_from(claims(accounts=["A1"]))
    with pytest.raises(StepUpRequired, match="acr is absent"):
        access.require_step_up(weak, REGISTRY, "uninstalled_type", STEP_UP)
