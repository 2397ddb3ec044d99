"""Absolute URLs kallrec hands out: the public URL when set, else what the client called; the
/download redirect's Location is one (issue 12: Kallglot clients use it as it is)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.requests import HTTPConnection

from kallrec.api.public_url import public_base
from kallrec.runtime import Runtime
from tests.api.helpers import ready_recording
from tests.conftest import Caller


def connection(host: str | None, scheme: str = "http") -> HTTPConnection:
    headers = [(b"host", host.encode())] if host is not None else []
    return HTTPConnection(
        {
            "type": "http",
            "scheme": scheme,
            "headers": headers,
            "path": "/v1/x",
            "query_string": b"",
            "server": ("10.0.0.5", 8080),
        }
    )


def test_the_public_url_wins_over_the_host() -> None:
    conn = connection("internal:8080")
    assert public_base(conn, "https://rec.example.com/") == "https://rec.example.com"


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("kallrec.test", "http", "http://kallrec.test"),
        ("rec.example.com:8443", "https", "https://rec.example.com:8443"),
        ("127.0.0.1:9000", "http", "http://127.0.0.1:9000"),
        ("[::1]:9000", "http", "http://[::1]:9000"),
    ],
)
def test_without_it_the_host_the_client_called(host: str, scheme: str, expected: str) -> None:
    assert public_base(connection(host, scheme), "") == expected


@pytest.mark.parametrize(
    "host", [None, "", "evil.example/phish?", "user@evil.example", "a b", "x:1:2", "h:123456"]
)
def test_a_host_header_that_is_no_host_gives_no_base(host: str | None) -> None:
    assert public_base(connection(host), "") is None


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    return await ready_recording(client, runtime, caller, tmp_path, seconds=1.0)


async def test_the_download_location_is_absolute(client, caller, rec) -> None:
    redirect = await client.get(f"/v1/recordings/{rec['id']}/download", headers=caller.headers)
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(f"http://kallrec.test/v1/recordings/{rec['id']}/download/file?")
    assert redirect.json()["url"] == location
    assert (await client.get(location)).status_code == 200


async def test_the_download_location_follows_the_host_called(client, caller, rec) -> None:
    headers = {**caller.headers, "Host": "rec.example.test:8443"}
    redirect = await client.get(f"/v1/recordings/{rec['id']}/download", headers=headers)
    assert redirect.headers["location"].startswith("http://rec.example.test:8443/v1/recordings/")


async def test_a_host_that_is_no_host_gets_a_relative_location(client, caller, rec) -> None:
    headers = {**caller.headers, "Host": "evil.example/phish?"}
    redirect = await client.get(f"/v1/recordings/{rec['id']}/download", headers=headers)
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith(f"/v1/recordings/{rec['id']}/download/file?")
