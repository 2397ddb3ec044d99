"""The sender's connections: the host is resolved once, every address is checked, and the
connection goes to a checked address, with the host name kept for Host, SNI and the certificate.

Names are answered by the test's DNS (tests/webhooks/conftest.py); receivers are on 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import anyio
import httpcore
import httpx
import pytest

from kallrec.network_addresses import IPNetwork, parse_networks
from kallrec.webhooks.outcomes import categorize
from kallrec.webhooks.transport import (
    BlockedAddress,
    GuardedBackend,
    GuardedTransport,
    UnresolvableHost,
)
from kallrec.webhooks.transport import system_resolve as real_resolve  # before any patching
from tests.webhooks.helpers import FakeDNS
from tests.webhooks.receiver import Receiver
from tests.webhooks.tls import CertificateAuthority

LOOPBACK = parse_networks("127.0.0.0/8")


@contextmanager
def listener() -> Iterator[socket.socket]:
    """A socket that listens and never accepts: any connection made to it waits in its queue."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def was_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def guarded_client(
    dns: FakeDNS, allowed: Sequence[IPNetwork] = LOOPBACK, ca: CertificateAuthority | None = None
) -> httpx.AsyncClient:
    backend = GuardedBackend(allowed, dns)
    context = None if ca is None else ca.client_context()
    return httpx.AsyncClient(
        transport=GuardedTransport(backend, httpx.Limits(), context), timeout=5, trust_env=False
    )


async def test_a_name_that_resolves_to_a_blocked_address_is_never_connected(dns: FakeDNS) -> None:
    dns.names["hooks.test"] = ["127.0.0.1"]
    with listener() as sock:
        port = sock.getsockname()[1]
        async with guarded_client(dns, allowed=()) as client:
            with pytest.raises(BlockedAddress) as refused:
                await client.post(f"http://hooks.test:{port}/hook")
        assert not was_connected(sock)
    assert (str(refused.value.address), refused.value.kind) == ("127.0.0.1", "loopback")
    assert categorize(refused.value) == "blocked_address"


async def test_every_address_of_a_name_is_checked_before_connecting(dns: FakeDNS) -> None:
    # The allowed address comes first: a guard that checked only the one it uses would pass.
    dns.names["hooks.test"] = ["127.0.0.1", "169.254.169.254"]
    with listener() as sock:
        port = sock.getsockname()[1]
        async with guarded_client(dns) as client:
            with pytest.raises(BlockedAddress) as refused:
                await client.post(f"http://hooks.test:{port}/hook")
        assert not was_connected(sock)
    assert refused.value.kind == "link-local"


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "[::1]", "0.0.0.0"]
)
async def test_numeric_hosts_are_checked_as_the_address_they_mean(dns: FakeDNS, host: str) -> None:
    with listener() as sock:
        port = sock.getsockname()[1]
        async with guarded_client(dns, allowed=()) as client:
            with pytest.raises(BlockedAddress):
                await client.post(f"http://{host}:{port}/hook")
        assert not was_connected(sock)
    assert dns.asked == []  # a numeric host is never looked up


async def test_connects_to_the_checked_address_and_keeps_the_host_header(dns: FakeDNS) -> None:
    dns.names["hooks.test"] = ["127.0.0.1"]
    with Receiver() as receiver:
        async with guarded_client(dns) as client:
            response = await client.post(f"http://hooks.test:{receiver.port}/hook", content=b"{}")
        (got,) = receiver.snapshot()
    assert response.status_code == 200
    assert got.headers["host"] == f"hooks.test:{receiver.port}" and got.path == "/hook"
    assert dns.asked == ["hooks.test"]


async def test_a_refused_first_address_falls_through_to_the_next(dns: FakeDNS) -> None:
    with Receiver() as closed:
        closed_port = closed.port
    with Receiver() as receiver:
        # Two loopback addresses, the first with nothing listening on the receiver's port.
        dns.names["hooks.test"] = ["127.0.0.2", "127.0.0.1"]
        async with guarded_client(dns) as client:
            response = await client.post(f"http://hooks.test:{receiver.port}/hook")
            with pytest.raises(httpcore.ConnectError) as refused:
                await client.post(f"http://127.0.0.1:{closed_port}/hook")
    assert response.status_code == 200
    assert categorize(refused.value) == "connection_refused"


async def test_tls_is_verified_for_the_host_name_not_the_address(
    dns: FakeDNS, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path)
    sni: list[str] = []
    dns.names["hooks.test"] = ["127.0.0.1"]
    with Receiver(tls=ca.server_context("hooks.test", sni)) as receiver:
        async with guarded_client(dns, ca=ca) as client:
            response = await client.post(f"https://hooks.test:{receiver.port}/hook", content=b"{}")
        (got,) = receiver.snapshot()
    assert response.status_code == 200 and sni == ["hooks.test"]
    assert got.headers["host"] == f"hooks.test:{receiver.port}"


async def test_a_certificate_for_another_name_is_a_tls_error(dns: FakeDNS, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    dns.names["hooks.test"] = ["127.0.0.1"]
    with Receiver(tls=ca.server_context("other.test")) as receiver:
        async with guarded_client(dns, ca=ca) as client:
            with pytest.raises(Exception) as failed:
                await client.post(f"https://hooks.test:{receiver.port}/hook")
        assert receiver.snapshot() == []
    assert categorize(failed.value) == "tls_error"


async def test_an_unknown_name_is_a_dns_error(dns: FakeDNS) -> None:
    async with guarded_client(dns) as client:
        with pytest.raises(UnresolvableHost) as failed:
            await client.post("http://nowhere.test/hook")
    assert categorize(failed.value) == "dns_error"


# -- the system resolver (no DNS traffic: numeric hosts and the hosts file only) ------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1"])
async def test_system_resolver_reads_numeric_hosts_without_asking(host: str) -> None:
    assert await real_resolve(host, 80) == [IPv4Address("127.0.0.1")]


async def test_system_resolver_answers_ipv6_literals_and_refuses_malformed_ones() -> None:
    assert await real_resolve("::ffff:127.0.0.1", 80) == [IPv6Address("::ffff:7f00:1")]
    for bad in ("1.2.3.4.5", "fe80::1%eth0"):
        with pytest.raises(UnresolvableHost):
            await real_resolve(bad, 80)


async def test_system_resolver_looks_names_up_on_its_own_threads() -> None:
    assert IPv4Address("127.0.0.1") in await real_resolve("localhost", 80)
    limiter = anyio.CapacityLimiter(1)
    assert IPv4Address("127.0.0.1") in await real_resolve("localhost", 80, limiter=limiter)
