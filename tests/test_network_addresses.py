"""Which addresses a webhook may reach: every spelling of every kind of non-public address.

Pure functions: the addresses below are values, nothing is sent to them.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from kallrec.network_addresses import (
    blocked_kind,
    first_blocked,
    literal_address,
    parse_ipv4,
    parse_networks,
)

LOOPBACK = parse_networks("127.0.0.0/8")


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # a.b: the last part fills three bytes
        ("127.0.1", "127.0.0.1"),  # a.b.c: the last part fills two bytes
        ("2130706433", "127.0.0.1"),  # one 32-bit number
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # a leading 0 is octal
        ("017700000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x0", "0.0.0.0"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),  # the root's trailing dot
        ("1.2.3", "1.2.0.3"),
    ],
)
def test_ipv4_is_read_the_way_inet_aton_reads_it(host: str, address: str) -> None:
    assert parse_ipv4(host) == IPv4Address(address)


@pytest.mark.parametrize("host", ["example.com", "localhost", "1.example", "a1", "1e3", "0x1g"])
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ipv4(host) is None


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "256.0.0.1", "1.2.3.256", "1.16777216", "4294967296", "09", "a.1", "x.0x"]
)
def test_malformed_numeric_hosts_are_errors(host: str) -> None:
    with pytest.raises(ValueError):
        parse_ipv4(host)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT (shared)"),
        ("100.127.255.254", "carrier-grade NAT (shared)"),
        ("169.254.169.254", "link-local"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("198.51.100.1", "reserved"),
        ("203.0.113.1", "reserved"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "scoped (zone id)"),
        ("fc00::1", "private (unique local)"),
        ("fd12:3456::1", "private (unique local)"),
        ("ff02::1", "multicast"),
        ("fec0::1", "reserved"),  # deprecated site-local
        ("::127.0.0.1", "reserved"),  # IPv4-compatible
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: the socket reaches 127.0.0.1
        ("::ffff:7f00:1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::127.0.0.1", "loopback (as 127.0.0.1, embedded in IPv6)"),  # NAT64
        ("64:ff9b::a9fe:a9fe", "link-local (as 169.254.169.254, embedded in IPv6)"),
        ("64:ff9b:1::1", "reserved"),  # local-use NAT64
        ("2002:7f00:1::1", "loopback (as 127.0.0.1, embedded in IPv6)"),  # 6to4
        ("2002:c0a8:101::1", "private (as 192.168.1.1, embedded in IPv6)"),
        ("2001::1", "reserved"),  # Teredo
        ("2001:db8::1", "reserved"),
        ("100::1", "reserved"),  # discard-only
    ],
)
def test_non_public_addresses_are_blocked(address: str, kind: str) -> None:
    assert blocked_kind(ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0", "172.32.0.1",
     "2606:4700::1111", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"],
)  # fmt: skip
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_kind(ip_address(address)) is None


def test_allowed_networks_open_exactly_their_addresses() -> None:
    for address in ("127.0.0.1", "127.9.9.9", "::ffff:127.0.0.1"):
        assert blocked_kind(ip_address(address), LOOPBACK) is None
    assert blocked_kind(ip_address("::1"), LOOPBACK) == "loopback"  # IPv6 is another network
    assert blocked_kind(ip_address("10.0.0.1"), LOOPBACK) == "private"
    assert blocked_kind(ip_address("169.254.169.254"), LOOPBACK) == "link-local"
    both = parse_networks("127.0.0.0/8, ::1/128, 10.20.0.0/16")
    assert blocked_kind(ip_address("::1"), both) is None
    assert blocked_kind(ip_address("10.20.30.40"), both) is None
    assert blocked_kind(ip_address("10.21.0.1"), both) == "private"


def test_a_name_is_as_safe_as_its_worst_address() -> None:
    public, private = ip_address("8.8.8.8"), ip_address("10.0.0.1")
    assert first_blocked([public]) is None
    assert first_blocked([public, private]) == (private, "private")
    assert first_blocked([public, private], parse_networks("10.0.0.0/8")) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.1", IPv4Address("127.0.0.1")),
        ("::1", IPv6Address("::1")),
        ("::ffff:127.0.0.1", IPv6Address("::ffff:7f00:1")),
        ("example.com", None),
    ],
)
def test_literal_address_of_a_url_host(host: str, address: object) -> None:
    assert literal_address(host) == address


def test_zone_ids_in_url_hosts_are_errors() -> None:
    with pytest.raises(ValueError, match="zone"):
        literal_address("fe80::1%eth0")


def test_parse_networks() -> None:
    assert parse_networks("") == ()
    assert [str(n) for n in parse_networks(" 127.0.0.0/8 ,::1, 10.1.2.3/16")] == [
        "127.0.0.0/8",
        "::1/128",
        "10.1.0.0/16",
    ]
    for bad in ("127.0.0.0/33", "localhost", "10.0.0.0/8;rm", "::1/129"):
        with pytest.raises(ValueError, match="CIDR"):
            parse_networks(bad)
