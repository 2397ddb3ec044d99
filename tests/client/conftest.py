"""Fixtures for the client tests: a real `kallrec serve`, a big recording, the fault proxy."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from kallrec.client import Kallrec, RetryPolicy
from tests.client.faultproxy import FaultProxy

KALLREC = Path(sys.executable).with_name("kallrec")
BIG_MINUTES = 20


@dataclass(frozen=True)
class Server:
    base_url: str
    key: str
    data_dir: Path
    demo_recording_id: str
    port: int


@dataclass(frozen=True)
class BigRecording:
    id: str
    session_id: str
    body: bytes
    etag: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kallrec serve exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"kallrec serve did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("client-server")
    data_dir = root / "data"
    port = free_port()
    log = root / "serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KALLREC_")},
        "KALLREC_JOB_POLL_SECONDS": "0.05",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(KALLREC), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        demo = dict(line.split("=", 1) for line in (data_dir / "DEMO.txt").read_text().splitlines())
        yield Server(url, demo["KALLREC_API_KEY"], data_dir, demo["RECORDING_ID"], port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def fast_retry(max_retries: int = 5) -> RetryPolicy:
    """Real sleeps, but short: faults in these tests are not rate limits."""
    return RetryPolicy(max_retries=max_retries, base_backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="session")
def api(server: Server) -> Iterator[Kallrec]:
    with Kallrec(server.key, base_url=server.base_url, retry=fast_retry()) as client:
        yield client


def call_audio(seconds: float, seed: int, channels: int = 1) -> np.ndarray:
    """A call-like signal: varying tones plus noise, so MP3 frames differ all the way through."""
    rate = 8000
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    freq = 300 + 200 * np.sin(2 * np.pi * t / 7.0)
    signal_ = 0.25 * np.sin(2 * np.pi * np.cumsum(freq) / rate)
    columns = [signal_ + 0.05 * rng.standard_normal(t.size) for _ in range(channels)]
    stacked = np.stack(columns, axis=1) if channels > 1 else columns[0]
    return (np.clip(stacked, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="session")
def big_recording(
    server: Server, api: Kallrec, tmp_path_factory: pytest.TempPathFactory
) -> BigRecording:
    """A 20-minute call (~4.8 MB of MP3), imported through the client and fetched directly.

    The download starts while the recording is still processing, so it also exercises the
    409-``recording_not_ready`` wait against the real server.
    """
    root = tmp_path_factory.mktemp("big")
    wav = root / "call.wav"
    sf.write(wav, call_audio(BIG_MINUTES * 60, seed=1), 8000, subtype="PCM_16", format="WAV")
    rec = api.recordings.create(wav)
    assert rec.status == "processing"
    result = api.recordings.download(rec.id, root / "direct.mp3", wait_timeout=60)
    body = (root / "direct.mp3").read_bytes()
    head = httpx.head(
        f"{server.base_url}/v1/recordings/{rec.id}/audio",
        headers={"Authorization": f"Bearer {server.key}"},
    )
    assert result.sha256 == hashlib.sha256(body).hexdigest()
    assert head.headers["etag"] == f'"{result.sha256}"'
    assert int(head.headers["content-length"]) == len(body) > 4_000_000
    assert rec.session_id is not None
    return BigRecording(rec.id, rec.session_id, body, head.headers["etag"])


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", server.port) as p:
        yield p
