"""Where the operator may connect on a tenant's behalf (TenantRegistryCredential spec.verify).

A tenant names the registry, and the registry names its token service: both would make
the operator a probe into the networks only it can reach. So a tenant's check connects
only to public addresses, or to the hosts and networks the platform allows. The rule is
applied to the address a host name resolved to, the one then connected to, so a name
that resolves differently the next time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DestinationPolicy", "is_public", "parse_allow_entry"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Special-purpose ranges (the IANA registries): private, shared, loopback, link-local,
# documentation, benchmarking, multicast, reserved. Spelled out rather than taken from
# `is_global`, whose answers changed between Python versions.
_NOT_PUBLIC_V4 = tuple(ipaddress.IPv4Network(cidr) for cidr in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
_NOT_PUBLIC_V6 = tuple(ipaddress.IPv6Network(cidr) for cidr in (
    "::/8", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
    "fec0::/10", "ff00::/8",
))
# IPv6 forms that carry an IPv4 address the packets end up at.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address on a dual-stack socket."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IPAddress) -> bool:
    """Whether the address, and any IPv4 address it carries, is in no special-purpose range."""
    address = _unmapped(address)
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in network for network in _NOT_PUBLIC_V4)
    if address in _NAT64:  # inside ::/8, but its packets go to the IPv4 address it carries
        return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in network for network in _NOT_PUBLIC_V6):
        return False
    return address.sixtofour is None or is_public(address.sixtofour)


def _host(name: str) -> str:
    return name.lower().rstrip(".")


def parse_allow_entry(entry: str) -> str | IPNetwork:
    """A host name (lower case) or a network (an address alone is a /32 or /128); ValueError otherwise."""
    text = entry.strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    host = _host(text)
    if not _HOST_NAME.match(host):
        raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR network")
    return host


@dataclass(frozen=True)
class DestinationPolicy:
    """Public addresses, plus the allowed hosts (whatever they resolve to) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, entries: Iterable[str]) -> DestinationPolicy:
        parsed = [parse_allow_entry(entry) for entry in entries]
        return cls(
            hosts=frozenset(entry for entry in parsed if isinstance(entry, str)),
            networks=tuple(entry for entry in parsed if not isinstance(entry, str)),
        )

    def allows(self, host: str, address: str) -> bool:
        """Whether a connection to `address`, which `host` resolved to, may be made."""
        if _host(host) in self.hosts:
            return True
        ip = _unmapped(ipaddress.ip_address(address.split("%", 1)[0]))  # no IPv6 zone index
        if any(ip in network for network in self.networks):
            return True
        return is_public(ip)
