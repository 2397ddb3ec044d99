"""Helpers for the end-to-end tests: a real `kallrec serve` subprocess and real HTTP clients.

Nothing here imports the product: the server is driven only through its command line and its
HTTP port, the way an operator and a client would.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import requests
import soundfile as sf

KALLREC = Path(sys.executable).with_name("kallrec")

# Every server and CLI call gets these unless a test overrides them.
BASE_ENV = {
    "KALLREC_JOB_POLL_SECONDS": "0.05",
    "KALLREC_PURGE_INTERVAL_SECONDS": "0.5",
    "KALLREC_LOG_LEVEL": "info",
}
AUDIO_ROUTE = "/v1/recordings/{recording_id}/audio"
HTTP_TIMEOUT = 30
# Each worker hands its request counts to Prometheus once a second (kallrec/metrics.py).
METRICS_SETTLE_SECONDS = 1.5


# -- processes -----------------------------------------------------------------------------------


class E2EError(RuntimeError):
    """The test setup broke (a server did not start, a CLI command failed): never an
    AssertionError, so that it is not taken for the product bug an xfail(raises=AssertionError)
    test documents."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without any KALLREC_* leaking in, plus BASE_ENV and overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLREC_")}
    for var in ("FORCE_COLOR", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(var, None)
    env.update(BASE_ENV)
    env.update(overrides or {})
    env["NO_COLOR"] = "1"
    return env


def run_cli(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    cmd = [str(KALLREC), *args, "--data-dir", str(data_dir)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=clean_env(env), timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise E2EError(
            f"{shlex.join(cmd)} exited {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
    return done


def last_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


@dataclass
class Demo:
    key: str
    recording_id: str
    session_id: str


@dataclass
class Server:
    """One `kallrec serve` process group on its own port and data directory."""

    name: str
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    workers: int | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def audio_url(self, recording_id: str) -> str:
        return self.url(f"/v1/recordings/{recording_id}/audio")

    # lifecycle

    def start(self, timeout: float = 60) -> Server:
        assert self.proc is None, "already running"
        self.port = free_port()
        cmd = [str(KALLREC), "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {shlex.join(cmd)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(self.env),
            start_new_session=True,  # its own process group: granian's workers die with it
        )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise E2EError(
                    f"server {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(requests.RequestException):
                if (
                    requests.get(self.url("/healthz"), timeout=1).status_code == 200
                    and self.all_workers_started()
                ):
                    return
            time.sleep(0.05)
        raise E2EError(f"server {self.name} not healthy after {timeout}s:\n{self.log_tail()}")

    def all_workers_started(self) -> bool:
        """Every worker finished its startup. (A SIGTERM that reaches a granian 2.8 worker while
        it is still starting is lost, and that worker then never exits.)"""
        log = self.log_text().rsplit("=== ", 1)[-1]
        return all(f"Started worker-{i}" in log for i in range(1, (self.workers or 1) + 1))

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (graceful), then SIGKILL of the whole group after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(10)
        # Workers the main process failed to reap must not outlive the test.
        self._signal_group(signal.SIGKILL)
        self._finish()

    def kill9(self) -> None:
        """A crash: SIGKILL to the main process and its workers at once."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)
        self._finish()

    def _finish(self) -> None:
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # operator commands against this server's data directory

    def cli(self, *args: str, check: bool = True, timeout: float = 120):  # type: ignore[no-untyped-def]
        return run_cli(self.data_dir, *args, env=self.env, check=check, timeout=timeout)

    def create_key(
        self,
        org: str,
        *,
        mode: str = "live",
        scopes: Sequence[str] = (),
        name: str | None = None,
    ) -> str:
        args = ["keys", "create", "--org", org, "--mode", mode]
        for scope in scopes:
            args += ["--scope", scope]
        if name:
            args += ["--name", name]
        key = last_lines(self.cli(*args).stdout)[-1]
        assert key.startswith(f"sk_{mode}_"), key
        return key

    @property
    def demo(self) -> Demo:
        values = dict(
            line.split("=", 1)
            for line in (self.data_dir / "DEMO.txt").read_text().splitlines()
            if "=" in line
        )
        return Demo(values["KALLREC_API_KEY"], values["RECORDING_ID"], values["SESSION_ID"])

    def audio_files(self) -> set[str]:
        """Every file under the storage tree (relative paths)."""
        root = self.data_dir / "audio"
        if not root.exists():
            return set()
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- HTTP ----------------------------------------------------------------------------------------


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upload(
    server: Server,
    key: str,
    path: Path,
    *,
    data: Mapping[str, str] | None = None,
    filename: str | None = None,
    content_type: str = "application/octet-stream",
) -> requests.Response:
    with path.open("rb") as fh:
        return requests.post(
            server.url("/v1/recordings"),
            headers=auth(key),
            files={"file": (filename or path.name, fh, content_type)},
            data=dict(data or {}),
            timeout=HTTP_TIMEOUT,
        )


def get_recording(server: Server, key: str, recording_id: str) -> dict[str, Any]:
    r = requests.get(
        server.url(f"/v1/recordings/{recording_id}"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_ready(server: Server, key: str, recording_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    rec = get_recording(server, key, recording_id)
    while rec["status"] == "processing" and time.monotonic() < deadline:
        time.sleep(0.05)
        rec = get_recording(server, key, recording_id)
    assert rec["status"] == "ready", f"{recording_id} not ready after {timeout}s: {rec}"
    return rec


def import_ready(
    server: Server,
    key: str,
    path: Path,
    *,
    data: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    r = upload(server, key, path, data=data)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "processing", body
    return wait_ready(server, key, body["id"], timeout)


def download(server: Server, key: str, recording_id: str) -> bytes:
    with requests.get(
        server.audio_url(recording_id), headers=auth(key), stream=True, timeout=HTTP_TIMEOUT
    ) as r:
        r.raise_for_status()
        return b"".join(r.iter_content(8192))


def settled_metrics(server: Server) -> str:
    """The /metrics text once every worker has handed over what it counted so far."""
    time.sleep(METRICS_SETTLE_SECONDS)
    r = requests.get(server.url("/metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return r.text


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_error(
    response: requests.Response,
    status: int,
    code: str,
    *,
    error_type: str | None = None,
    param: object = ...,  # a str or None to check; ... (the default) to skip
) -> dict[str, Any]:
    """The §5 envelope, a non-2xx status that raise_for_status() refuses, the request id."""
    assert response.status_code == status, (response.status_code, response.text)
    try:
        response.raise_for_status()
    except requests.HTTPError:
        pass
    else:
        raise AssertionError(f"raise_for_status() accepted a {response.status_code}")
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"type", "code", "message", "param", "request_id", "retry_after"} <= set(error), error
    assert error["code"] == code, error
    if error_type is not None:
        assert error["type"] == error_type, error
    if param is not ...:
        assert error["param"] == param, error
    assert isinstance(error["message"], str) and error["message"], error
    request_id = response.headers.get("X-Request-ID")
    assert request_id and request_id.startswith("req_"), response.headers
    assert error["request_id"] == request_id, (error, request_id)
    if error["retry_after"] is not None:
        assert response.headers["Retry-After"] == str(error["retry_after"]), response.headers
    assert "Traceback" not in response.text
    return error  # type: ignore[no-any-return]


# -- audio ---------------------------------------------------------------------------------------


def speech_like(seconds: float, rate: int = 8000, seed: int = 0) -> np.ndarray:
    """Int16 mono: voiced syllables (harmonic tones with a moving pitch), fricative noise bursts
    and pauses, all random, so every second of it is different."""
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    out = np.zeros(total, dtype=np.float64)
    pos = 0
    while pos < total:
        n = min(total - pos, int(rng.uniform(0.08, 0.6) * rate))
        t = np.arange(n) / rate
        kind = rng.choice(3, p=[0.55, 0.2, 0.25])
        if kind == 0:  # voiced: f0 gliding between 90 and 260 Hz, a few harmonics
            f0 = rng.uniform(90, 260) * (1 + rng.uniform(-0.2, 0.2) * t / max(t[-1], 1e-3))
            phase = 2 * np.pi * np.cumsum(f0) / rate
            seg = sum(np.sin(h * phase) / h for h in range(1, 6))
        elif kind == 1:  # unvoiced: noise
            seg = rng.standard_normal(n) * 0.5
        else:  # pause: faint line noise
            seg = rng.standard_normal(n) * 0.01
        envelope = np.abs(np.sin(np.pi * np.arange(n) / max(n - 1, 1))) ** 0.5
        out[pos : pos + n] = seg * envelope * rng.uniform(0.2, 0.6)
        pos += n
    return (np.clip(out, -1, 1) * 32767 * 0.8).astype(np.int16)


def tone(seconds: float, freq: float, rate: int, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype, format="WAV")
    return path


@dataclass
class Decoded:
    sample_rate: int
    channels: int
    samples: np.ndarray  # float, mono (first channel)
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def decode_mp3(data: bytes | Path) -> Decoded:
    """Decode with FFmpeg (PyAV): an implementation independent of the product's."""
    return decode_audio(data, "mp3")


def decode_audio(data: bytes | Path, container_format: str | None = None) -> Decoded:
    """Decode any audio file FFmpeg knows (format sniffed unless given); first channel kept."""
    source = io.BytesIO(data) if isinstance(data, bytes) else str(data)
    chunks: list[np.ndarray] = []
    rates: set[int] = set()
    channels: set[int] = set()
    with av.open(source, mode="r", format=container_format) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        for frame in container.decode(stream):
            rates.add(frame.sample_rate)
            channels.add(frame.layout.nb_channels)
            arr = frame.to_ndarray()
            if arr.ndim == 1:
                arr = arr[None, :]
            if not frame.format.is_planar:
                arr = arr.reshape(-1, frame.layout.nb_channels).T
            chunks.append(arr[0].astype(np.float64))
    assert len(rates) == 1 and len(channels) == 1, (rates, channels)
    return Decoded(rates.pop(), channels.pop(), np.concatenate(chunks), codec)


def band_power(samples: np.ndarray, rate: int, freq: float, width: float = 8.0) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs > freq - width) & (freqs < freq + width)].sum())


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(freqs[int(np.argmax(spectrum[1:])) + 1])


# -- HTTP multipart/byteranges -------------------------------------------------------------------


def parse_byteranges(content_type: str, body: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(first, last, size, data) for each part of a multipart/byteranges body (RFC 9110 §14.6),
    using each part's Content-Range length rather than searching for the boundary in data."""
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/byteranges", content_type
    boundary = params.strip().removeprefix("boundary=").strip('"')
    assert boundary, content_type
    delimiter = f"--{boundary}".encode()
    pos = body.index(delimiter)
    while True:
        pos += len(delimiter)
        if body[pos : pos + 2] == b"--":
            assert body[pos + 2 :].strip(b"\r\n") == b"", body[pos:]
            return
        assert body[pos : pos + 2] == b"\r\n", body[pos : pos + 20]
        head_end = body.index(b"\r\n\r\n", pos)
        headers = {}
        for line in body[pos + 2 : head_end].decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        unit, _, spec = headers["content-range"].partition(" ")
        assert unit == "bytes", headers
        span, _, size = spec.partition("/")
        first, _, last = span.partition("-")
        start, end = int(first), int(last) + 1
        data = body[head_end + 4 : head_end + 4 + (end - start)]
        yield start, end - 1, int(size), data
        pos = head_end + 4 + (end - start)
        assert body[pos : pos + 2] == b"\r\n", body[pos : pos + 20]
        pos += 2
        assert body[pos : pos + len(delimiter)] == delimiter


# -- looking at the data directory ---------------------------------------------------------------


def db_query(server: Server, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Read-only look at the server's SQLite database (a server may be running: WAL)."""
    uri = f"file:{server.data_dir / 'kallrec.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        return conn.execute(sql, params).fetchall()


def row_counts(server: Server) -> dict[str, int]:
    return {
        table: db_query(server, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("sessions", "recordings", "jobs")
    }


def tmp_files(server: Server) -> set[str]:
    """Scratch files (each process's own scratch directory may come and go; files must not)."""
    root = server.data_dir / "tmp"
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


def encode_mp3_with_av(path: Path, samples: np.ndarray, rate: int) -> Path:
    """An MP3 made by FFmpeg's libmp3lame (not by kallrec); samples int16 (n,) or (n, 2)."""
    planar = samples.T if samples.ndim == 2 else samples[None, :]
    layout = "stereo" if planar.shape[0] == 2 else "mono"
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar), format="s16p", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


# LAME's encoder delay and last-frame padding (~0.14-0.21 s at 8 kHz): a CBR file without a
# Xing/LAME header (kallrec writes none, for linear seeking) gives a decoder no way to trim them.
MP3_PADDING_SECONDS = 0.25


def assert_mp3_duration(decoded_seconds: float, expected: float) -> None:
    assert expected - 0.01 <= decoded_seconds <= expected + MP3_PADDING_SECONDS, (
        decoded_seconds,
        expected,
    )


def precondition(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs a setup step of a test marked xfail(raises=AssertionError): a setup failure then
    fails the test for real instead of passing for the known bug."""
    try:
        return fn(*args, **kwargs)
    except AssertionError as exc:
        import pytest

        pytest.fail(f"precondition failed: {exc}", pytrace=True)
