"""The address policy of a tenant's registry checks: public, or allowed by the platform."""

from __future__ import annotations

import ipaddress

import pytest

from regcred.planning.destinations import DestinationPolicy, is_public, parse_allow_entry

NOTHING_ALLOWED = DestinationPolicy()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        # IPv4
        ("8.8.8.8", True),
        ("140.82.112.3", True),
        ("10.1.2.3", False),  # private
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("172.32.0.1", True),  # just past 172.16.0.0/12
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT, many Pod networks)
        ("127.0.0.1", False),  # loopback
        ("127.255.0.9", False),
        ("0.0.0.0", False),  # "this host": a connection to it reaches the loopback
        ("169.254.169.254", False),  # link-local: cloud metadata services
        ("192.0.2.10", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("224.0.0.1", False),  # multicast
        ("255.255.255.255", False),
        ("240.0.0.1", False),  # reserved
        # IPv6
        ("2606:4700:4700::1111", True),
        ("::1", False),  # loopback
        ("::", False),
        ("fe80::1", False),  # link-local
        ("fd00:ec2::254", False),  # unique local (AWS metadata over IPv6)
        ("fc00::1", False),
        ("fec0::1", False),  # site-local
        ("ff02::1", False),  # multicast
        ("2001:db8::1", False),  # documentation
        ("2001::1", False),  # Teredo
        ("::ffff:127.0.0.1", False),  # IPv4-mapped: the IPv4 address decides
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False),  # IPv4-compatible (deprecated)
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::a00:1", False),  # local-use NAT64
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
    assert NOTHING_ALLOWED.allows("registry.example", address) is public


@pytest.mark.parametrize(
    ("allow", "host", "address", "allowed"),
    [
        # networks
        (["10.0.0.0/8"], "harbor.internal", "10.20.30.40", True),
        (["10.0.0.0/8"], "harbor.internal", "192.168.1.1", False),
        (["10.0.0.0/8"], "harbor.internal", "::ffff:10.1.1.1", True),  # the mapped form is the same address
        (["10.1.2.3"], "harbor.internal", "10.1.2.3", True),  # an address alone is a /32
        (["10.1.2.3"], "harbor.internal", "10.1.2.4", False),
        (["fd00::/8"], "harbor.internal", "fd12::5", True),
        (["fd00::/8"], "harbor.internal", "fe80::1", False),
        (["127.0.0.1/32"], "anything", "127.0.0.1", True),
        (["127.0.0.1/32"], "anything", "::1", False),
        # hosts: whatever they resolve to, and only they
        (["harbor.internal"], "harbor.internal", "10.0.0.5", True),
        (["harbor.internal"], "HARBOR.internal.", "10.0.0.5", True),
        (["harbor.internal"], "evil.example", "10.0.0.5", False),
        (["harbor.internal"], "harbor.internal.evil.example", "10.0.0.5", False),
        (["Harbor.Internal"], "harbor.internal", "127.0.0.1", True),
        # public addresses need no entry
        ([], "ghcr.io", "140.82.112.3", True),
        (["10.0.0.0/8", "harbor.internal"], "ghcr.io", "140.82.112.3", True),
        # an IPv6 zone index does not hide the address
        ([], "x", "fe80::1%eth0", False),
    ],
)
def test_allow_lists(allow: list[str], host: str, address: str, allowed: bool) -> None:
    assert DestinationPolicy.allowing(allow).allows(host, address) is allowed


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("10.0.0.0/8", ipaddress.ip_network("10.0.0.0/8")),
        ("10.1.2.3/8", ipaddress.ip_network("10.0.0.0/8")),  # host bits are dropped, not refused
        ("::1", ipaddress.ip_network("::1/128")),
        (" Harbor.Example. ", "harbor.example"),
        ("localhost", "localhost"),
    ],
)
def test_allow_entries_parse(entry: str, parsed: object) -> None:
    assert parse_allow_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["", "10.0.0.0/33", "https://harbor.example", "harbor.example:5000", "*.example", "a b"])
def test_bad_allow_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a host name"):
        parse_allow_entry(entry)
