"""Which addresses the bridge may connect to on its own, for the SSRF guard in `bridge.fetch`.

Python's `ipaddress` properties do most of the work; what they miss is handled here: IPv4 addresses embedded in
IPv6 (mapped, 6to4, NAT64) are judged as the IPv4 address they lead to, IPv6 site-local and the shared
(carrier-grade NAT) range are refused, and legacy IPv4 spellings (`2130706433`, `0x7f.1`) count as addresses,
since the system resolver reads them so.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Final

__all__ = ["IPAddress", "IPNetwork", "address_refusal", "embedded_ipv4", "literal_address", "parse_networks"]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_CGNAT: Final = ip_network("100.64.0.0/10")
_NAT64: Final = ip_network("64:ff9b::/96")


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (`10.0.0.0/8`, `fd00::/8`, a bare address) as networks; ValueError names a bad one."""
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP network in CIDR notation (e.g. 10.0.0.0/8 or fd00::/8)") from None
    return tuple(networks)


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries and leads to (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why the bridge must not connect to `ip` on its own (None for a public address)."""
    if isinstance(ip, IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            why = address_refusal(embedded)
            return f"{why} (IPv4 {embedded} inside IPv6)" if why else None
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata endpoints live)"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, IPv4Address) and ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a publicly routable address"
    return None


def literal_address(host: str) -> IPAddress | None:
    """`host` as an address when it is one, legacy IPv4 spellings (`2130706433`, `0x7f.1`, `127.1`) included:
    the system resolver would read those as addresses too, so they must not pass as names."""
    try:
        return ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        with contextlib.suppress(OSError):
            return IPv4Address(socket.inet_aton(host))
    return None
