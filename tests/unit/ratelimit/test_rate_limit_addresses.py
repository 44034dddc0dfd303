"""Which address a per-address budget is charged to, and the checks on rate settings."""

from __future__ import annotations

from typing import Any

import pytest

from mailbox_service.errors import ConfigurationError
from mailbox_service.ratelimit.addresses import ClientAddresses
from mailbox_service.ratelimit.budgets import check_rate_settings
from mailbox_service.settings import RateSettings, load_settings


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    addresses = ClientAddresses("")
    assert addresses.of("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert addresses.of("198.51.100.7", None) == "198.51.100.7"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_another_client() -> None:
    addresses = ClientAddresses("10.0.0.0/8")
    assert addresses.of("198.51.100.7", "203.0.113.1") == "198.51.100.7"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() -> None:
    addresses = ClientAddresses("10.0.0.0/8, 192.0.2.1")
    # The client forged the first entry; our two proxies appended the last two.
    forwarded = "1.2.3.4, 203.0.113.9, 10.1.2.3"
    assert addresses.of("192.0.2.1", forwarded) == "203.0.113.9"


def test_every_hop_trusted_means_the_leftmost_is_the_client() -> None:
    addresses = ClientAddresses("10.0.0.0/8")
    assert addresses.of("10.0.0.1", "10.9.9.9, 10.0.0.2") == "10.9.9.9"


def test_a_mangled_entry_is_not_believed() -> None:
    addresses = ClientAddresses("10.0.0.0/8")
    assert addresses.of("10.0.0.1", "not-an-ip, 10.0.0.2") == "10.0.0.2"
    assert addresses.of("10.0.0.1", "203.0.113.5:4711") == "203.0.113.5"


def test_ipv6_clients_are_counted_per_64() -> None:
    addresses = ClientAddresses("")
    first = addresses.of("2001:db8:1:2::1")
    assert first == addresses.of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert addresses.of("2001:db8:1:3::1") != first
    assert addresses.of("::ffff:192.0.2.8") == "192.0.2.8"


def test_a_peer_without_an_ip_keeps_its_name() -> None:
    assert ClientAddresses("").of("testclient") == "testclient"
    assert ClientAddresses("").of(None) == "unknown"


def test_a_bad_trusted_proxy_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"MAILBOX_RATE_TRUSTED_PROXIES: 'proxy\.local'"):
        ClientAddresses("10.0.0.1, proxy.local")


def test_defaults_are_the_issues_numbers() -> None:
    rate = load_settings({}).rate
    assert (rate.ingest_per_minute, rate.portal_per_minute, rate.anonymous_per_minute) == (
        6000,
        600,
        120,
    )
    assert (rate.sockets_per_address, rate.sockets_per_user) == (50, 20)
    assert rate.socket_auth_timeout_s == 10.0
    assert rate.trusted_proxies == ""


def test_settings_are_read_from_mailbox_rate_variables() -> None:
    rate = load_settings(
        {"MAILBOX_RATE_PORTAL_PER_MINUTE": "0", "MAILBOX_RATE_TRUSTED_PROXIES": "10.0.0.0/8"}
    ).rate
    assert rate.portal_per_minute == 0
    assert rate.trusted_proxies == "10.0.0.0/8"


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("portal_per_minute", -1, "MAILBOX_RATE_PORTAL_PER_MINUTE"),
        ("sockets_per_user", -5, "MAILBOX_RATE_SOCKETS_PER_USER"),
        ("socket_auth_timeout_s", 0.0, "MAILBOX_RATE_SOCKET_AUTH_TIMEOUT_S"),
    ],
)
def test_negative_budgets_stop_start_up(field: str, value: float, variable: str) -> None:
    budgets: dict[str, Any] = {field: value}
    with pytest.raises(ConfigurationError, match=variable):
        check_rate_settings(RateSettings(**budgets))
