"""Consent history in the account is capped: the last CONSENT_HISTORY_KEPT changes stay."""

from __future__ import annotations

from typing import Any

from app_fixtures import unique
from mailbox_fixtures import bearer, portal_token
from mailbox_service.settings import Settings
from mailbox_service.storage.accounts import CONSENT_HISTORY_KEPT
from mailbox_service.wiring.services import Services


async def test_toggling_consent_keeps_only_the_newest_changes(
    client: Any, settings: Settings, services: Services
) -> None:
    account = unique("consent")
    token = bearer(portal_token(settings, account, sub="toggler"))
    url = f"/v1/mailbox/accounts/{account}/preferences"
    toggles = CONSENT_HISTORY_KEPT + 15
    for n in range(toggles):
        response = await client.put(url, json={"paperless": n % 2 == 0}, headers=token)
        assert response.status_code == 200, response.text
    stored = await services.database.accounts.find_one({"_id": account})
    assert stored is not None
    history = stored["consent_history"]
    assert len(history) == CONSENT_HISTORY_KEPT
    # The newest change is last and matches the account's current value.
    assert history[-1]["paperless"] == stored["paperless"] == ((toggles - 1) % 2 == 0)
    assert [h["paperless"] for h in history] == [n % 2 == 0 for n in range(15, toggles)]
    assert all(h["by"] == "toggler" for h in history)
    times = [h["at"] for h in history]
    assert times == sorted(times)
