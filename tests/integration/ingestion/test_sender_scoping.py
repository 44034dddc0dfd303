"""Ingest keys bound to account patterns (`keys create --accounts`), on the real stack.

A document for an account outside the key's patterns is a 403 that says nothing about the
account: the same answer whether it exists, has consented to paperless delivery, or not.
"""

from __future__ import annotations

from typing import Any

import pytest

from app_fixtures import cli, invoice_metadata, post_document, unique
from mailbox_service.wiring.services import Services


def _created_key(*args: str) -> str:
    return cli("keys", "create", "--source", unique("scoped"), *args).stdout.strip()


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique("LEW").upper()


@pytest.fixture(scope="module")
def scoped_key(test_env: dict[str, str], prefix: str) -> str:
    return _created_key("--accounts", f"{prefix}-*", "--accounts", "EXACT-[0-9]")


async def test_matching_accounts_are_accepted(client: Any, scoped_key: str, prefix: str) -> None:
    for account in (f"{prefix}-1", f"{prefix}-77", "EXACT-7"):
        response = await post_document(client, scoped_key, invoice_metadata(account, notify=False))
        assert response.status_code == 201, response.text


async def test_other_accounts_are_403_naming_no_account_state(
    client: Any, services: Services, scoped_key: str, prefix: str, ingest_key: str
) -> None:
    consenting = unique("OTHER")
    await services.accounts.update(
        consenting, by="test", paperless=True, email=f"{consenting.lower()}@example.org"
    )
    unknown = unique("NOBODY")
    answers = []
    for account in (consenting, unknown, f"x{prefix}-1", f"{prefix.lower()}-1", "EXACT-10"):
        meta = invoice_metadata(account, notify=False)
        response = await post_document(client, scoped_key, meta)
        assert response.status_code == 403, (account, response.text)
        error = response.json()["error"]
        error.pop("request_id", None)
        answers.append(error)
        assert (
            await services.database.documents.count_documents({"source_ref": meta["source_ref"]})
            == 0
        )
    # Identical answers: existence and consent of the account cannot be told apart.
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["code"] == "forbidden"
    assert answers[0]["field"] == "account_id"
    assert "delivery" not in str(answers[0])
    # A key without patterns (every key made before them) still reaches every account.
    response = await post_document(client, ingest_key, invoice_metadata(consenting, notify=False))
    assert response.status_code == 201
    assert response.json()["delivery"] == "digital"


async def test_keys_list_shows_patterns_or_all_accounts(scoped_key: str, prefix: str) -> None:
    key_id = scoped_key.split("_")[1]
    unrestricted = _created_key()
    listing = cli("keys", "list").stdout.splitlines()
    scoped_line = next(line for line in listing if line.startswith(key_id))
    assert scoped_line.endswith(f"{prefix}-*,EXACT-[0-9]")
    open_line = next(line for line in listing if line.startswith(unrestricted.split("_")[1]))
    assert open_line.endswith("all accounts")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--accounts", "LEW *"), "wildcards"),
        (("--accounts", ""), "1-64 characters"),
        (("--accounts", "A" * 65), "1-64 characters"),
        (("--accounts", "LEW-[0-9"), "unbalanced"),
        (("--scope", "admin", "--accounts", "LEW-*"), "only an ingest key"),
    ],
)
def test_bad_patterns_are_refused(
    test_env: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    result = cli("keys", "create", "--source", "bad-patterns", *args, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert words in result.stderr


def test_revoke_help_states_the_cache_delay() -> None:
    text = " ".join(cli("keys", "revoke", "--help").stdout.split())
    assert "at once" not in text
    assert "within MAILBOX_AUTH_API_KEY_CACHE_S" in text
    assert "on every API node" in text
