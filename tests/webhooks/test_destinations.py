"""POST /v1/webhook_endpoints on the default settings (spec §9): a URL whose host is, or resolves
to, a non-public address is refused, whatever its spelling, and so is one with credentials.

Nothing is ever sent: creation only. Names are answered by the test's DNS (conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kallrec.config import Settings
from tests.conftest import Caller
from tests.webhooks.helpers import FakeDNS

BASE = "/v1/webhook_endpoints"
SETTING = "KALLREC_WEBHOOK_ALLOWED_NETWORKS"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The defaults: no network is allowed beyond the public internet."""
    return Settings.from_env({}, data_dir=tmp_path / "data")


async def create(client: httpx.AsyncClient, caller: Caller, url: str) -> httpx.Response:
    body = {"url": url, "enabled_events": ["*"]}
    return await client.post(BASE, json=body, headers=caller.headers)


def assert_refused(response: httpx.Response, *words: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "validation_error",
        "invalid_field_value",
        "url",
    ), error
    for word in words:
        assert word in error["message"], error["message"]
    return str(error["message"])


@pytest.mark.parametrize(
    "host",
    [
        # loopback, in every spelling the resolver would accept
        "127.0.0.1", "127.0.0.2", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.1",
        "0177.0.0.1", "0177.1", "017700000001", "127.0.0.1.", "[::1]", "[0:0:0:0:0:0:0:1]",
        "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]", "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        # unspecified
        "0.0.0.0", "0", "[::]",
        # link-local, cloud metadata
        "169.254.169.254", "169.254.43518", "0xa9fea9fe", "[::ffff:169.254.169.254]",
        "[fe80::1]", "[fe80::1%25eth0]", "[fe80::1%eth0]",
        # private, CGNAT, multicast, reserved
        "10.0.0.1", "10.1", "172.16.0.1", "192.168.1.1", "[fc00::1]", "[fd00::1]",
        "100.64.0.1", "224.0.0.1", "[ff02::1]", "240.0.0.1", "255.255.255.255",
        "192.0.2.1", "198.18.0.1", "[2001:db8::1]", "[64:ff9b::a00:1]", "[::ffff:10.0.0.1]",
    ],
)  # fmt: skip
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_non_public_hosts_are_refused_in_every_spelling(
    client: httpx.AsyncClient, caller: Caller, host: str, scheme: str
) -> None:
    assert_refused(await create(client, caller, f"{scheme}://{host}:8080/hook"), SETTING)
    assert (await client.get(BASE, headers=caller.headers)).json()["data"] == []


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("localhost", ["127.0.0.1"]),
        ("LOCALHOST", ["127.0.0.1"]),
        ("metadata.internal.test", ["169.254.169.254"]),
        ("intranet.test", ["10.1.2.3"]),
        ("six.test", ["fd00::5"]),
        ("mapped.test", ["::ffff:192.168.0.1"]),
        # One bad address among good ones is enough: a connection could use any of them.
        ("mixed.test", ["192.0.2.10", "127.0.0.1"]),
    ],
)
async def test_names_that_resolve_to_non_public_addresses_are_refused(
    client: httpx.AsyncClient, caller: Caller, dns: FakeDNS, name: str, addresses: list[str]
) -> None:
    dns.names[name.lower()] = addresses
    message = assert_refused(await create(client, caller, f"https://{name}/hook"), SETTING)
    assert "resolves to" in message
    assert (await client.get(BASE, headers=caller.headers)).json()["data"] == []


@pytest.mark.parametrize("host", ["api.localhost", "localhost.", "a.b.localhost."])
async def test_localhost_names_are_loopback_even_unresolved(
    client: httpx.AsyncClient, caller: Caller, host: str
) -> None:
    assert_refused(await create(client, caller, f"http://{host}/hook"), SETTING)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@hooks.example.com/hook",
        "https://user@hooks.example.com/hook",
        "https://:secret@hooks.example.com/hook",
        "https://hooks.example.com@127.0.0.1/hook",
    ],
)
async def test_urls_with_credentials_are_refused(
    client: httpx.AsyncClient, caller: Caller, url: str
) -> None:
    assert_refused(await create(client, caller, url), "credentials")


async def test_a_name_that_does_not_resolve_yet_is_accepted(
    client: httpx.AsyncClient, caller: Caller, dns: FakeDNS
) -> None:
    # Deliveries check the address they connect to, every time; refusing here would only make
    # creating an endpoint depend on the DNS of the moment.
    response = await create(client, caller, "https://hooks.example.com/hook")
    assert response.status_code == 201, response.text
    assert dns.asked == ["hooks.example.com"]


async def test_numeric_public_hosts_must_be_written_the_standard_way(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    # 134744072 is 8.8.8.8: refused as a spelling (nothing is sent to it either way).
    assert_refused(await create(client, caller, "https://134744072/hook"), "dotted-decimal")
