"""What silent sockets and stalled request bodies cost kallrec, and whether others still get in.

    .venv/bin/python bench/silent_connections.py          # ~40 seconds

`kallrec serve` on its defaults (one worker, a new data directory with the demo call). Side by
side in one run: `/healthz` and a download of the demo call, timed with nothing else open and
then while 2,500 connections that never send a byte and 100 POSTs whose body stopped arriving
are held open; the server's RSS before and during; and how many of the silent sockets the
server has closed once its header timeout (KALLREC_HEADER_TIMEOUT_SECONDS) has passed.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from bench import procstat, servers

SILENT = 2500
STALLED = 100
SAMPLES = 20


def timed_ms(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def measure(base: str, key: str, recording_id: str) -> tuple[float, float]:
    """Median milliseconds of /healthz and of the demo call's download."""
    audio = f"{base}/v1/recordings/{recording_id}/audio"
    headers = {"Authorization": f"Bearer {key}"}
    health = [timed_ms(lambda: requests.get(f"{base}/healthz", timeout=30)) for _ in range(SAMPLES)]
    download = [
        timed_ms(lambda: requests.get(audio, headers=headers, timeout=30).content)
        for _ in range(SAMPLES)
    ]
    return statistics.median(health), statistics.median(download)


def stalled_body(port: int, key: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        f"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
    )
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True


def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SILENT + STALLED + 1024), hard))
    with tempfile.TemporaryDirectory(prefix="kallrec-silent-") as tmp:
        workdir = Path(tmp)
        port = servers.free_port()
        proc = servers.kallrec_proc("kallrec", workdir, workdir / "data", port, 1, offload=False)
        proc.start()
        try:
            servers.wait_port(port, proc.popen, proc.log)  # type: ignore[arg-type]
            demo = dict(
                line.split("=", 1)
                for line in (workdir / "data" / "DEMO.txt").read_text().splitlines()
            )
            key, recording = demo["KALLREC_API_KEY"], demo["RECORDING_ID"]
            base = f"http://127.0.0.1:{port}"
            pids = procstat.tree(proc.pid)
            idle = measure(base, key, recording)
            rss_idle = procstat.rss_bytes(pids)
            with contextlib.ExitStack() as held:
                silent = [
                    held.enter_context(socket.create_connection(("127.0.0.1", port)))
                    for _ in range(SILENT)
                ]
                for _ in range(STALLED):
                    held.enter_context(stalled_body(port, key))
                time.sleep(1)
                attacked = measure(base, key, recording)
                rss_attacked = procstat.rss_bytes(pids)
                time.sleep(11)  # past the default 10 s header timeout
                closed = sum(closed_by_server(s) for s in silent)
        finally:
            proc.stop()
    print(f"kallrec serve (defaults), {SILENT} silent sockets + {STALLED} stalled bodies")
    print(f"{'':24}{'idle':>10}{'attacked':>10}{'ratio':>8}")
    for name, a, b in (
        ("/healthz, median ms", idle[0], attacked[0]),
        ("download, median ms", idle[1], attacked[1]),
    ):
        print(f"{name:24}{a:10.1f}{b:10.1f}{b / a:8.2f}")
    mib = 2**20
    print(
        f"{'server RSS, MiB':24}{rss_idle / mib:10.1f}{rss_attacked / mib:10.1f}"
        f"{rss_attacked / rss_idle:8.2f}"
    )
    per_socket = (rss_attacked - rss_idle) / (SILENT + STALLED) / 1024
    print(
        f"per held connection: {per_socket:.1f} KiB; "
        f"silent sockets closed by the server after 12 s: {closed} of {SILENT}"
    )


if __name__ == "__main__":
    main()
