"""End to end: a real `kallrec serve`, an endpoint added with the CLI, a file imported over HTTP,
and a real receiver that fails twice before accepting the `recording.ready` event."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kallrec.webhooks import verify_signature
from tests.e2e.helpers import Server, import_ready, last_lines, tone, write_wav
from tests.webhooks.receiver import Drop, Receiver, Respond

pytestmark = pytest.mark.e2e

ENV = {
    "KALLREC_WEBHOOK_RETRY_SCHEDULE": "0,0.5,0.5,0.5",
    "KALLREC_JOB_POLL_SECONDS": "0.05",
    # The receiver is on this host: the operator allows loopback (refused by default).
    "KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
}


def test_recording_ready_arrives_once_after_two_failures(tmp_path: Path) -> None:
    server = Server("webhooks-e2e", tmp_path / "data", tmp_path / "server.log", dict(ENV))
    with Receiver([Respond(500), Drop(), Respond(200)]) as receiver:
        try:
            server.start()
            added = server.cli(
                "webhooks", "add", receiver.url, "--org", "demo", "--mode", "test",
                "--events", "recording.ready",
            )  # fmt: skip
            secret = last_lines(added.stdout)[-1]
            assert secret.startswith("whsec_")
            wav = write_wav(tmp_path / "call.wav", tone(2.0, 440, 8000), 8000)
            recording = import_ready(server, server.demo.key, wav)

            deadline = time.monotonic() + 20
            while not any(r.answered == 200 for r in receiver.snapshot()):
                assert time.monotonic() < deadline, server.log_tail()
                time.sleep(0.05)
            time.sleep(1.5)  # longer than the whole schedule: no duplicate may follow
            history = server.cli("webhooks", "deliveries", "--status", "succeeded").stdout
        finally:
            server.stop()

    got = receiver.snapshot()
    assert [r.answered for r in got] == [500, None, 200], server.log_tail()
    assert [r.headers["kallglot-retry-count"] for r in got] == ["0", "1", "2"]
    assert len({r.headers["kallglot-webhook-id"] for r in got}) == 1
    for request in got:
        verify_signature(secret, request.headers["kallglot-signature"], request.body)
    event = json.loads(got[-1].body)
    assert (event["type"], event["livemode"]) == ("recording.ready", False)
    assert event["data"]["id"] == recording["id"] and event["data"]["status"] == "ready"
    assert got[-1].headers["kallglot-webhook-id"] in history and "#3 200" in history
