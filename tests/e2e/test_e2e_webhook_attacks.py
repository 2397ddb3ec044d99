"""Webhook attacks from issue 11, against a real `kallrec serve` with real receivers on 127.0.0.1.

* SSRF: with `webhooks:manage`, an endpoint at a non-public address (any spelling, or a name
  that resolves to one) was accepted, and the deliveries API echoed connection errors and
  redirect `Location`s: a port scanner and cloud-metadata oracle. Refused by default now; the
  history keeps categories only.
* Fairness: ten endpoints of one organization that never answer delayed another organization's
  delivery from 6.5 s to 83 s. Now an event of another organization goes out within 10 s.

Nothing is sent beyond loopback: refused URLs are never contacted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.helpers import HTTP_TIMEOUT, Server, assert_error, auth
from tests.webhooks.receiver import Receiver, Respond

pytestmark = pytest.mark.e2e

SETTING = "KALLREC_WEBHOOK_ALLOWED_NETWORKS"
LOOPBACK = {SETTING: "127.0.0.0/8"}


def create_endpoint(server: Server, key: str, url: str) -> requests.Response:
    body = {"url": url, "enabled_events": ["session.created"]}
    return requests.post(
        server.url("/v1/webhook_endpoints"), json=body, headers=auth(key), timeout=HTTP_TIMEOUT
    )


def create_session(server: Server, key: str) -> None:
    created = requests.post(
        server.url("/v1/sessions"),
        json={"mode": "ai_agent"},
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    )
    assert created.status_code == 201, created.text


def wait_for(check: Callable[[], Any], seconds: float, server: Server) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.05)
    return result


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::1]",
        "[::ffff:127.0.0.1]", "0.0.0.0", "[::]", "169.254.169.254", "[fe80::1]",
        "[fe80::1%25lo]", "10.0.0.1", "172.16.0.1", "192.168.0.1", "100.64.0.1", "224.0.0.1",
        "[fc00::1]", "[64:ff9b::a9fe:a9fe]", "localhost",
    ],
)  # fmt: skip
def test_non_public_destinations_are_refused_by_default(server: Server, host: str) -> None:
    key = server.demo.key
    for url in (f"http://{host}/", f"https://{host}:8443/hook"):
        response = create_endpoint(server, key, url)
        error = assert_error(
            response, 400, "invalid_field_value", error_type="validation_error", param="url"
        )
        assert SETTING in error["message"], error
    listed = requests.get(server.url("/v1/webhook_endpoints"), headers=auth(key), timeout=30)
    assert listed.json()["data"] == []


def test_credentials_in_a_url_are_refused(server: Server) -> None:
    url = "https://admin:hunter2@hooks.example.com/hook"
    error = assert_error(create_endpoint(server, server.demo.key, url), 400, "invalid_field_value")
    assert error["param"] == "url" and "hunter2" not in error["message"].split("'")[-1]


def test_the_delivery_history_is_no_scanner_or_metadata_oracle(start_server) -> None:  # type: ignore[no-untyped-def]
    env = {
        **LOOPBACK,
        "KALLREC_WEBHOOK_RETRY_SCHEDULE": "0,0.2",
        "KALLREC_WEBHOOK_TIMEOUT_SECONDS": "1",
    }
    server: Server = start_server(env)
    key = server.demo.key
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/admin"
    with Receiver() as closed:
        closed_url = closed.url  # a port nobody listens on any more
    redirect = Respond(307, headers={"Location": metadata, "X-Amz-Token": "AQoDYXdzEJr"})
    with Receiver([redirect]) as redirecting:
        ids = {}
        for category, url in (("connection_refused", closed_url), ("http_status", redirecting.url)):
            created = create_endpoint(server, key, url)
            assert created.status_code == 201, created.text
            ids[category] = created.json()["id"]
        create_session(server, key)

        def history(endpoint_id: str) -> requests.Response:
            path = f"/v1/webhook_endpoints/{endpoint_id}/deliveries"
            return requests.get(server.url(path), headers=auth(key), timeout=HTTP_TIMEOUT)

        def all_failed() -> bool:
            rows = [history(e).json()["data"] for e in ids.values()]
            return all(r and r[0]["status"] == "failed" for r in rows)

        wait_for(all_failed, 20, server)
        assert len(redirecting.snapshot()) == 2

    for category, endpoint_id in ids.items():
        response = history(endpoint_id)
        attempts = response.json()["data"][0]["attempts"]
        assert [a["category"] for a in attempts] == [category] * 2, attempts
        for leak in (
            "169.254",
            "meta-data",
            "Location",
            "AQoDYXdzEJr",
            "Errno",
            "refused ",
            "Connect",
        ):
            assert leak not in response.text, (leak, response.text)


def test_hung_receivers_of_one_organization_do_not_delay_another(start_server) -> None:  # type: ignore[no-untyped-def]
    # Defaults (30 s timeout, the 8-step schedule) but loopback receivers allowed.
    server: Server = start_server(dict(LOOPBACK))
    slow_key = server.create_key("slowco", mode="test")
    other_key = server.create_key("otherco", mode="test")
    with Receiver([Respond(200, delay=120)]) as hung, Receiver() as fast:
        for n in range(10):
            assert create_endpoint(server, slow_key, f"{hung.url}/{n}").status_code == 201
        assert create_endpoint(server, other_key, fast.url).status_code == 201
        for _ in range(3):
            create_session(server, slow_key)  # 30 deliveries that will hang
        wait_for(lambda: len(hung.snapshot()) >= 8, 20, server)

        started = time.monotonic()
        create_session(server, other_key)
        wait_for(lambda: fast.snapshot(), 10, server)
        took = time.monotonic() - started
        print(f"\nanother organization's event with ten endpoints hanging: {took:.2f} s")
        assert len(hung.snapshot()) < 30  # the hung organization holds a share, not every slot
