"""Which URLs may receive webhooks: the service must not become a way into its own network.

Refused always (422 naming `url` at creation; a failed attempt at delivery):
  - a scheme other than http or https, a URL over 2 KiB, user info in the URL, no host;
  - a host that is, or resolves to, a link-local address (169.254.0.0/16, fe80::/10: the cloud
    metadata services live there), a known metadata address (fd00:ec2::254,
    100.100.100.200) or name (metadata.google.internal ...), an unspecified address (0.0.0.0,
    ::), multicast or broadcast; IPv4-mapped IPv6 forms of these too.
Loopback and private ranges are allowed unless `webhook.allow_private` is off (an operator
whose workers sit next to internal services turns it off; docs/security.md).

A name is checked on every address it resolves to, and again at every attempt (DNS
rebinding): the sender then connects to the address checked, not to a second lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from mailbox_service.errors import InvalidMetadata, ServiceError

MAX_URL_BYTES = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_ALWAYS_BLOCKED = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "169.254.0.0/16",  # link-local: 169.254.169.254 is the metadata service of most clouds
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "fe80::/10",
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "ff00::/8",
    )
]
_PRIVATE = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
]
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


class UrlRefused(ServiceError, ValueError):
    """Why a URL (or the address it resolved to) may not receive webhooks."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to call the host (Host header, TLS name)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress


def _refused_address(address: IPAddress, allow_private: bool) -> str | None:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    for candidate in (address, mapped):
        if candidate is None:
            continue
        for network in _ALWAYS_BLOCKED:
            if candidate.version == network.version and candidate in network:
                return f"{candidate} is a link-local, metadata, unspecified or multicast address"
        if not allow_private:
            for network in _PRIVATE:
                if candidate.version == network.version and candidate in network:
                    return f"{candidate} is a loopback or private address"
    return None


def _parts(url: str) -> SplitResult:
    if len(url.encode()) > MAX_URL_BYTES:
        raise UrlRefused(f"longer than {MAX_URL_BYTES} bytes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("must be an http:// or https:// URL")
    if not parts.hostname:
        raise UrlRefused("has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not carry user info (user:password@)")
    if parts.fragment:
        raise UrlRefused("must not have a #fragment")
    return parts


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UrlRefused(f"host {host!r} does not resolve")
    return found


def check(url: str, *, allow_private: bool) -> Target:
    """Resolve and check; the target to connect to, or UrlRefused. Blocks on DNS."""
    parts = _parts(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if host in METADATA_NAMES:
        raise UrlRefused(f"host {host!r} is a cloud metadata service")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    for address in addresses:
        reason = _refused_address(address, allow_private)
        if reason is not None:
            raise UrlRefused(f"host {host!r} resolves to {reason}")
    return Target(url=url, scheme=parts.scheme, host=host, port=port, address=addresses[0])


def check_for_endpoint(url: str, *, allow_private: bool) -> str:
    """The URL as given, or InvalidMetadata (422) naming `url` and why."""
    try:
        check(url, allow_private=allow_private)
    except UrlRefused as exc:
        raise InvalidMetadata(f"url: {exc}", field="url") from None
    return url
