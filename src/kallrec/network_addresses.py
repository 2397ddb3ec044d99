"""Which addresses a webhook may reach (spec §9): pure functions, no I/O.

A webhook URL is chosen by anyone with ``webhooks:manage``, and the server POSTs to it from
inside the operator's network. Left open, that is a port scanner and a cloud-metadata reader
(server-side request forgery). So by default a webhook may only reach *global* unicast
addresses; the operator opens anything else network by network
(``KALLREC_WEBHOOK_ALLOWED_NETWORKS``, e.g. ``127.0.0.0/8`` for a receiver on the same host).

Addresses are judged by where a connection would really go, whatever their spelling:

* IPv4 written the way ``inet_aton`` (and so the system resolver) reads it: ``127.1``,
  ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` all mean 127.0.0.1 (``parse_ipv4``);
* IPv6 that carries an IPv4 address: IPv4-mapped ``::ffff:a.b.c.d`` is that IPv4 address; the
  NAT64 well-known prefix ``64:ff9b::/96`` and 6to4 ``2002::/16`` reach the embedded IPv4
  address through a gateway, so they are refused when it is;
* IPv6 zone ids (``fe80::1%eth0``) are refused outright: they only exist for non-global scopes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

SETTING = "KALLREC_WEBHOOK_ALLOWED_NETWORKS"

# Not reachable on the public internet, or not unicast (IANA special-purpose registries). Spelled
# out rather than left to ``ipaddress.is_global``, whose lists change between Python releases and
# which counts multicast as global.
_BLOCKED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), kind)
    for net, kind in (
        ("0.0.0.0/8", "unspecified"),  # "this network": 0.0.0.0 reaches the local host
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT (shared)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),  # cloud metadata lives at 169.254.169.254
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "reserved"),  # documentation
        ("192.88.99.0/24", "reserved"),  # 6to4 relay anycast
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),  # benchmarking
        ("198.51.100.0/24", "reserved"),  # documentation
        ("203.0.113.0/24", "reserved"),  # documentation
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes the limited broadcast 255.255.255.255
    )
)
# Only 2000::/3 holds global unicast; everything else (::, ::1, IPv4-compatible ::/96,
# fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast, …) is
# refused by that alone. These are the special blocks inside it (6to4, 2002::/16, is judged by
# the IPv4 address it embeds).
_GLOBAL_V6 = IPv6Network("2000::/3")
_BLOCKED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), kind)
    for net, kind in (
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo (2001::/32) included
        ("2001:db8::/32", "reserved"),  # documentation
        ("3fff::/20", "reserved"),  # documentation
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")  # the well-known prefix: a gateway reaches the IPv4 tail
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")  # local-use translation prefixes
_V6_KINDS = (
    (IPv6Network("::/128"), "unspecified"),
    (IPv6Network("::1/128"), "loopback"),
    (IPv6Network("fc00::/7"), "private (unique local)"),
    (IPv6Network("fe80::/10"), "link-local"),
    (IPv6Network("ff00::/8"), "multicast"),
)

# A host name whose last label is a number is an IPv4 address to the URL standard and to
# inet_aton (``1.2.3``, ``0x7f.1``), not a name to look up.
_NUMERIC_LABEL = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)$")


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """``KALLREC_WEBHOOK_ALLOWED_NETWORKS``: comma-separated CIDRs (a bare address is a /32 or
    /128). ValueError names the first entry that is not one."""
    networks: list[IPNetwork] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network in CIDR notation") from None
    return tuple(networks)


def parse_ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address ``host`` denotes when its last label is numeric, read the way
    ``inet_aton`` reads it (1 to 4 parts; decimal, 0-prefixed octal or 0x-prefixed hex; the last
    part fills the remaining bytes). None when ``host`` is a name. ValueError when it looks like
    an address but is not a valid one (``1.2.3.4.5``, ``256.0.0.1``, ``09``)."""
    labels = host.removesuffix(".").split(".")
    if not labels or not _NUMERIC_LABEL.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    parts = [_parse_part(label, host) for label in labels]
    last_bits = 8 * (5 - len(parts))
    if any(part > 255 for part in parts[:-1]) or parts[-1] >= 1 << last_bits:
        raise ValueError(f"{host!r} is not a valid IPv4 address")
    value = 0
    for part in parts[:-1]:
        value = value << 8 | part
    return IPv4Address(value << last_bits | parts[-1])


def _parse_part(label: str, host: str) -> int:
    try:
        if label[:2].lower() == "0x":
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label, 8)
        return int(label)
    except ValueError:
        raise ValueError(f"{host!r} is not a valid IPv4 address") from None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL host spells, or None for a name. ``host`` as httpx gives it (IPv6
    without brackets). ValueError for malformed numeric hosts and for IPv6 zone ids."""
    if ":" in host:
        if "%" in host:
            raise ValueError("IPv6 zone ids are not allowed")
        return IPv6Address(host)
    return parse_ipv4(host)


def blocked_kind(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` ("loopback", "private", …), or None when it
    may: a global unicast address, or one inside an ``allowed`` network."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # the socket connects to the IPv4 address itself
    allowed = tuple(allowed)
    if any(address.version == net.version and address in net for net in allowed):
        return None
    if isinstance(address, IPv4Address):
        return next((kind for net, kind in _BLOCKED_V4 if address in net), None)
    if address.scope_id:
        return "scoped (zone id)"
    if address in _NAT64 or address.sixtofour is not None:
        embedded = address.sixtofour or IPv4Address(int(address) & 0xFFFFFFFF)
        kind = blocked_kind(embedded, allowed)
        return None if kind is None else f"{kind} (as {embedded}, embedded in IPv6)"
    if address in _NAT64_LOCAL:
        return "reserved"
    if address not in _GLOBAL_V6:
        return next((kind for net, kind in _V6_KINDS if address in net), "reserved")
    return next((kind for net, kind in _BLOCKED_V6 if address in net), None)


def first_blocked(
    addresses: Sequence[IPAddress], allowed: Iterable[IPNetwork] = ()
) -> tuple[IPAddress, str] | None:
    """The first address of ``addresses`` a webhook may not reach, with why; None when every one
    may be reached (a name is only as safe as the worst address it resolves to)."""
    allowed = tuple(allowed)
    for address in addresses:
        kind = blocked_kind(address, allowed)
        if kind is not None:
            return address, kind
    return None


def as_address(value: str) -> IPAddress:
    """An address as ``getaddrinfo`` reports it (IPv6 may carry ``%zone``)."""
    return ip_address(value)
