"""The `mailbox` realm of the dev stack's Keycloak, made through the admin REST API.

What the realm holds is what the portal expects of any OIDC provider (docs/operations.md,
"Configuring an OIDC provider"):
- a public client `mailbox-portal` (authorization code with PKCE, and the direct access grant
  for scripts and tests) whose access tokens carry `aud` = the service's audience;
- the claim `accounts` (a list) from the multi-valued user attribute `accounts`, and the claim
  `account_roles` (a JSON object: account id -> `reader` | `owner`) from the user attribute of
  that name, by two user-attribute protocol mappers;
- a realm role `support` (Keycloak puts realm roles into `realm_access.roles`);
- step-up: levels of authentication `pwd` (1) and `mfa` (2) mapped to `acr` values, and a
  browser flow that asks for a one-time code (TOTP) only when level 2 is requested
  (`acr_values=mfa`); the token's `acr` is then `mfa`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

REALM = "mailbox"
PORTAL_CLIENT = "mailbox-portal"
SUPPORT_ROLE = "support"
STEP_UP_FLOW = "browser-step-up"
LEVELS = {"pwd": 1, "mfa": 2}
"""acr value -> level of authentication (Keycloak's `acr.loa.map`)."""
REDIRECT_URI = "http://127.0.0.1/portal/callback"
"""Where the login sends the browser back; nothing listens there in the dev stack (a test reads
the code from the redirect)."""
TIMEOUT_S = 30.0


def _execution(authenticator: str, priority: int, config: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "authenticator": authenticator,
        "requirement": "REQUIRED",
        "priority": priority,
        "authenticatorFlow": False,
        "autheticatorFlow": False,  # Keycloak's own export spells it so; it reads both
        "userSetupAllowed": False,
    }
    if config is not None:
        step["authenticatorConfig"] = config
    return step


def _level_flow(alias: str, priority: int) -> dict[str, Any]:
    return {
        "flowAlias": alias,
        "requirement": "CONDITIONAL",
        "priority": priority,
        "authenticatorFlow": True,
        "autheticatorFlow": True,
        "userSetupAllowed": False,
    }


def _attribute_mapper(name: str, json_type: str, multivalued: bool) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": {
            "user.attribute": name,
            "claim.name": name,
            "jsonType.label": json_type,
            "multivalued": str(multivalued).lower(),
            "access.token.claim": "true",
            "id.token.claim": "false",
            "userinfo.token.claim": "true",
        },
    }


def realm_representation(audience: str, realm: str = REALM) -> dict[str, Any]:
    """The whole realm as one JSON document for `POST /admin/realms`."""
    level_age = "36000"
    return {
        "realm": realm,
        "enabled": True,
        "accessTokenLifespan": 900,
        "attributes": {"acr.loa.map": json.dumps(LEVELS)},
        "roles": {"realm": [{"name": SUPPORT_ROLE, "description": "reads any mailbox"}]},
        "browserFlow": STEP_UP_FLOW,
        "authenticatorConfig": [
            {
                "alias": "level-pwd",
                "config": {"loa-condition-level": "1", "loa-max-age": level_age},
            },
            {
                "alias": "level-mfa",
                "config": {"loa-condition-level": "2", "loa-max-age": level_age},
            },
        ],
        "authenticationFlows": [
            {
                "alias": STEP_UP_FLOW,
                "description": "password; a one-time code when acr mfa is requested",
                "providerId": "basic-flow",
                "topLevel": True,
                "builtIn": False,
                "authenticationExecutions": [
                    _level_flow("step-up level pwd", 10),
                    _level_flow("step-up level mfa", 20),
                ],
            },
            {
                "alias": "step-up level pwd",
                "providerId": "basic-flow",
                "topLevel": False,
                "builtIn": False,
                "authenticationExecutions": [
                    _execution("conditional-level-of-authentication", 10, "level-pwd"),
                    _execution("auth-username-password-form", 20),
                ],
            },
            {
                "alias": "step-up level mfa",
                "providerId": "basic-flow",
                "topLevel": False,
                "builtIn": False,
                "authenticationExecutions": [
                    _execution("conditional-level-of-authentication", 10, "level-mfa"),
                    _execution("auth-otp-form", 20),
                ],
            },
        ],
        "clients": [
            {
                "clientId": PORTAL_CLIENT,
                "name": "Mailbox portal",
                "enabled": True,
                "publicClient": True,
                "standardFlowEnabled": True,
                "directAccessGrantsEnabled": True,
                "redirectUris": [REDIRECT_URI],
                "webOrigins": ["+"],
                "attributes": {"pkce.code.challenge.method": "S256"},
                "protocolMappers": [
                    {
                        "name": "mailbox audience",
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-audience-mapper",
                        "config": {
                            "included.custom.audience": audience,
                            "access.token.claim": "true",
                            "id.token.claim": "false",
                        },
                    },
                    _attribute_mapper("accounts", "String", multivalued=True),
                    _attribute_mapper("account_roles", "JSON", multivalued=False),
                ],
            }
        ],
    }


class KeycloakAdmin:
    """A few admin REST calls against one Keycloak (as the bootstrap administrator)."""

    def __init__(self, base_url: str, password: str, user: str = "admin") -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": user, "password": password}
        self._http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT_S)

    def close(self) -> None:
        self._http.close()

    def _headers(self) -> dict[str, str]:
        # A fresh token per call: the master realm's tokens live 60 s, calls are few.
        answer = self._http.post(
            "/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", **self._credentials},
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One admin call under `/admin/realms`; raises on an error status."""
        answer = self._http.request(
            method, f"/admin/realms{path}", headers=self._headers(), **kwargs
        )
        if answer.is_error:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def realm_exists(self, realm: str = REALM) -> bool:
        answer = self._http.get(f"/admin/realms/{realm}", headers=self._headers())
        return answer.status_code == 200

    def create_realm(self, audience: str, realm: str = REALM) -> None:
        """Create the realm, then let its users carry attributes the user profile does not
        declare (`accounts`, `account_roles`), which Keycloak 24+ refuses by default."""
        self.call("POST", "", json=realm_representation(audience, realm))
        profile = self.call("GET", f"/{realm}/users/profile").json()
        profile["unmanagedAttributePolicy"] = "ADMIN_EDIT"
        self.call("PUT", f"/{realm}/users/profile", json=profile)

    def create_user(
        self,
        username: str,
        password: str,
        *,
        accounts: Sequence[str] = (),
        account_roles: Mapping[str, str] | None = None,
        realm_roles: Sequence[str] = (),
        totp_secret: str | None = None,
        realm: str = REALM,
    ) -> str:
        """A user ready to sign in; its id. `totp_secret` registers a one-time-code device
        (RFC 6238, SHA-1, 6 digits, 30 s, keyed with the secret's UTF-8 bytes)."""
        attributes: dict[str, list[str]] = {}
        if accounts:
            attributes["accounts"] = list(accounts)
        if account_roles is not None:
            attributes["account_roles"] = [json.dumps(dict(account_roles))]
        credentials: list[dict[str, Any]] = [
            {"type": "password", "value": password, "temporary": False}
        ]
        if totp_secret is not None:
            credentials.append(
                {
                    "type": "otp",
                    "userLabel": "test device",
                    "secretData": json.dumps({"value": totp_secret}),
                    "credentialData": json.dumps(
                        {
                            "subType": "totp",
                            "digits": 6,
                            "counter": 0,
                            "period": 30,
                            "algorithm": "HmacSHA1",
                        }
                    ),
                }
            )
        user = {
            "username": username,
            "enabled": True,
            "email": f"{username}@example.test",
            "emailVerified": True,
            "firstName": username,
            "lastName": "Test",
            "attributes": attributes,
            "credentials": credentials,
        }
        # Partial import accepts every credential type; `POST /users` only passwords.
        self.call(
            "POST", f"/{realm}/partialImport", json={"ifResourceExists": "FAIL", "users": [user]}
        )
        found = self.call("GET", f"/{realm}/users", params={"username": username, "exact": "true"})
        user_id = str(found.json()[0]["id"])
        for role_name in realm_roles:
            role = self.call("GET", f"/{realm}/roles/{role_name}").json()
            self.call("POST", f"/{realm}/users/{user_id}/role-mappings/realm", json=[role])
        return user_id

    def signing_key_providers(self, realm: str = REALM) -> list[dict[str, Any]]:
        """The realm's RSA signing key providers (components)."""
        realm_id = self.call("GET", f"/{realm}").json()["id"]
        found = self.call(
            "GET",
            f"/{realm}/components",
            params={"parent": realm_id, "type": "org.keycloak.keys.KeyProvider"},
        ).json()
        return [c for c in found if c.get("providerId") in {"rsa-generated", "rsa"}]

    def rotate_signing_key(self, realm: str = REALM) -> None:
        """Add a new RS256 key with a higher priority and retire every older one (disabled:
        it leaves the JWKS, so tokens it signed stop verifying once verifiers refresh)."""
        old = self.signing_key_providers(realm)
        realm_id = self.call("GET", f"/{realm}").json()["id"]
        top = max((int(c["config"].get("priority", ["0"])[0]) for c in old), default=0)
        self.call(
            "POST",
            f"/{realm}/components",
            json={
                "name": f"rsa-rotated-{top + 1}",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {
                    "priority": [str(top + 100)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "algorithm": ["RS256"],
                },
            },
        )
        for component in old:
            component["config"]["enabled"] = ["false"]
            component["config"]["active"] = ["false"]
            self.call("PUT", f"/{realm}/components/{component['id']}", json=component)


def password_grant(
    base_url: str,
    username: str,
    password: str,
    *,
    realm: str = REALM,
    client_id: str = PORTAL_CLIENT,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Tokens for a user by the direct access grant (scripts and tests; a browser uses the
    authorization code flow)."""
    answer = httpx.post(
        f"{base_url}/realms/{realm}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": client_id,
            "username": username,
            "password": password,
            "scope": "openid",
            **(extra or {}),
        },
        timeout=TIMEOUT_S,
    )
    if answer.is_error:
        raise RuntimeError(f"token request failed: {answer.status_code} {answer.text[:300]}")
    result: dict[str, Any] = answer.json()
    return result
