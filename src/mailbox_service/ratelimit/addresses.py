"""The client address a per-address budget is charged to.

The socket peer, unless the peer is one of the operator's reverse proxies
(`MAILBOX_RATE_TRUSTED_PROXIES`): then `X-Forwarded-For` is read from the right, skipping
trusted proxies, and the first hop that is not one is the client. Anything left of that hop
was written by the client itself and could be forged, so it is never believed. Without trusted
proxies the header is ignored entirely: otherwise any client could pick a fresh address per
request and never run out of budget.

IPv6 clients are counted per /64: a single customer line usually holds a whole /64, and
counting per address would let one attacker rotate through 2^64 of them.
"""

from __future__ import annotations

import functools
import ipaddress

from mailbox_service.errors import ConfigurationError

UNKNOWN = "unknown"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def parse_trusted(spec: str) -> tuple[Network, ...]:
    """`MAILBOX_RATE_TRUSTED_PROXIES`: comma-separated addresses or CIDR networks."""
    networks = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"MAILBOX_RATE_TRUSTED_PROXIES: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def bucket_name(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


class ClientAddresses:
    """Turns (socket peer, X-Forwarded-For) into the address whose budget a request spends."""

    def __init__(self, trusted_proxies: str = "") -> None:
        self._trusted = parse_trusted(trusted_proxies)
        # The same few peers and headers come again and again; parsing them is not free.
        self.of = functools.lru_cache(maxsize=4096)(self._resolve)  # type: ignore[method-assign]

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)

    def of(self, peer: str | None, forwarded_for: str | None = None) -> str:
        """The bucket name of the client (replaced by a cached `_resolve` per instance)."""
        return self._resolve(peer, forwarded_for)

    def _resolve(self, peer: str | None, forwarded_for: str | None = None) -> str:
        client = _parse(peer) if peer else None
        if client is None:
            # No socket address (an in-process test client, a unix socket): one shared bucket.
            return peer or UNKNOWN
        if not self._trusted or not self._is_trusted(client) or not forwarded_for:
            return bucket_name(client)
        for hop in reversed(forwarded_for.split(",")):
            address = _parse(hop)
            if address is None:
                break  # a forged or mangled entry: the last proxy-written hop stands
            client = address
            if not self._is_trusted(address):
                break
        return bucket_name(client)
