"""Schemathesis against a real `kallrec serve` (issue 11, "in CI from now on").

The OpenAPI document is the contract a generator reads: Schemathesis (`st run`, all checks,
every phase: examples, coverage, fuzzing, and the stateful phase that follows the document's
links) sends thousands of generated requests to a server with real recordings, signed download
links and webhook endpoints, and checks every answer against the document: no 5xx, statuses,
headers and bodies as documented, valid requests accepted, invalid ones refused.

What a generator cannot know is supplied, and what follows from it excluded, by
tests/e2e/schemathesis_hooks.py (loaded through schemathesis.toml); both are listed in README.md,
"Testing the API with Schemathesis". Webhook URLs all point at a receiver on loopback, so no
delivery leaves the machine; the test checks that afterwards in the database.

The run is random on purpose. Its seed is printed; to repeat a run:
KALLREC_SCHEMATHESIS_SEED=<seed> .venv/bin/pytest tests/e2e/test_e2e_schemathesis.py
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    Server,
    auth,
    clean_env,
    db_query,
    import_ready,
    speech_like,
    write_wav,
)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ST = Path(sys.executable).with_name("st")
# Per operation and phase. 100 gives about 2,800 cases in 40-70 s on a 2-core machine.
MAX_EXAMPLES = 100
MIN_CASES = 2_000
RUN_TIMEOUT = 900
SEED_VARIABLE = "KALLREC_SCHEMATHESIS_SEED"


class Receiver:
    """Answers every webhook delivery 204 and counts them: where all endpoints point."""

    def __init__(self) -> None:
        received: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(self.headers.get("Kallglot-Webhook-Id", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.received = received
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    sink = Receiver()
    try:
        yield sink
    finally:
        sink.close()


def _prepare(server: Server, key: str, receiver: Receiver, tmp_path: Path) -> None:
    """What the run starts from: an endpoint that gets every event (so deliveries exist to page
    through), and ready recordings, mono and dual. The run deletes some as it goes."""
    endpoint = requests.post(
        server.url("/v1/webhook_endpoints"),
        headers=auth(key),
        json={"url": f"http://{receiver.address}/kallrec", "enabled_events": ["*"]},
        timeout=HTTP_TIMEOUT,
    )
    assert endpoint.status_code == 201, endpoint.text
    for seed in range(5):
        mono = write_wav(tmp_path / f"mono-{seed}.wav", speech_like(2.0, seed=seed), 8000)
        import_ready(server, key, mono)
    stereo = np.stack([speech_like(2.0, seed=10), speech_like(2.0, seed=11)], axis=1)
    dual = write_wav(tmp_path / "dual.wav", stereo, 8000)
    import_ready(server, key, dual, data={"channel": "dual"})


def _failures(output: str) -> str:
    """The part of Schemathesis's output that explains a failed run (failures, errors and the
    summary), trimmed for the pytest report; the whole of it is in the file named there."""
    start = min(
        (i for i in (output.find("= FAILURES ="), output.find("= ERRORS =")) if i >= 0),
        default=max(0, len(output) - 6000),
    )
    text = output[output.rfind("\n", 0, start) + 1 :]
    return text if len(text) <= 20_000 else text[:14_000] + "\n[…]\n" + text[-6_000:]


def _run_schemathesis(
    server: Server, key: str, receiver: Receiver, seed: int, out: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = out / "report.json"
    cmd = [
        str(ST),
        "run",
        server.url("/openapi.json"),
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        # One at a time: the hooks' look-ups (a cursor, a ready recording) stay true until the
        # request that uses them is sent.
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        # The key is a throwaway of this server: repro commands print it (and Idempotency-Key,
        # session_id, … that Schemathesis would hide as well).
        "--output-sanitize",
        "false",
        "--no-color",
    ]
    env = clean_env(
        {
            "KALLREC_ST_KEY": key,
            "KALLREC_ST_WEBHOOK_SINK": receiver.address,
            # Hypothesis's own caches go with the test, not into the working tree.
            "HYPOTHESIS_STORAGE_DIRECTORY": str(out / "hypothesis"),
            "COLUMNS": "120",
        }
    )
    # From the repository root, where schemathesis.toml (and the hooks it names) are found.
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    (out / "schemathesis.txt").write_text(done.stdout + done.stderr)
    return done, json.loads(report.read_text()) if report.exists() else {}


def test_schemathesis_finds_no_failure_in_thousands_of_generated_requests(
    start_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    server = start_server(
        {
            # Thousands of requests in a minute, from one key.
            "KALLREC_RATE_LIMIT_PER_MINUTE": "0",
            # The receiver on loopback is where every endpoint points (the hooks see to it).
            "KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        }
    )
    key = server.create_key("schemathesis")
    _prepare(server, key, receiver, tmp_path)
    seed = int(os.environ.get(SEED_VARIABLE) or random.SystemRandom().getrandbits(64))
    print(f"Schemathesis seed {seed}; repeat with {SEED_VARIABLE}={seed}")

    done, report = _run_schemathesis(server, key, receiver, seed, tmp_path)

    where = f"(seed {seed}: repeat with {SEED_VARIABLE}={seed}; whole output: {tmp_path})"
    assert report, f"Schemathesis wrote no report {where}:\n{done.stdout[-4000:]}{done.stderr}"
    problems = [*report["failures"], *report["errors"]]
    assert done.returncode == 0 and not problems, (
        f"Schemathesis failed {where}:\n{_failures(done.stdout)}"
    )
    assert report["complete"], report["stop_reason"]
    assert {name: phase["status"] for name, phase in report["phases"].items()} == dict.fromkeys(
        ("examples", "coverage", "fuzzing", "stateful"), "success"
    )
    cases = report["test_cases"]["generated"]
    print(f"{cases} cases in {report['running_time']:.0f} s, all passed")
    assert cases >= MIN_CASES, f"only {cases} generated cases {where}"

    # No delivery could leave the machine: every endpoint the run made points at the receiver,
    # and deliveries did reach it.
    urls = [url for (url,) in db_query(server, "SELECT url FROM webhook_endpoints")]
    assert len(urls) > 1
    assert {urlsplit(url).netloc for url in urls} == {receiver.address}
    assert receiver.received
