"""1,000 clients that read a little of the 2-hour recording and then stop reading.

Each client is a raw socket with a small receive buffer: it sends one GET, reads `read_bytes`,
then holds the connection open without reading while the server's memory is sampled. A server
that buffers what it cannot send grows by up to the file size per client; one that only keeps a
chunk in flight per connection stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.request
from dataclasses import asdict, dataclass

from bench.procstat import Sampler, rss_bytes, tree

# What the stalled clients send, in the order they run: a plain download; what an `<audio>`
# element sends first; what it sends after the listener seeks 4 minutes into the call.
SEEK = "Range: bytes=1000000-"
BROWSER = {
    "Range: bytes=0-": "what a browser sends first",
    SEEK: "a browser's seek, then paused",
}
SLOW_VARIANTS = ("GET", *BROWSER)


def variant_headers(variant: str) -> dict[str, str]:
    """The header a variant adds to the GET: none, or its Range."""
    return {} if variant == "GET" else {"Range": variant.removeprefix("Range: ")}


@dataclass
class SlowReport:
    clients: int
    connected: int
    read_ok: int
    idle_rss: int
    peak_rss: int
    kernel_tcp_bytes_peak: int
    healthz_ms_during: float | None
    seconds_held: float

    @property
    def growth(self) -> int:
        return self.peak_rss - self.idle_rss

    def as_dict(self) -> dict:
        return {**asdict(self), "growth": self.growth}


def _tcp_mem_bytes() -> int:
    with open("/proc/net/sockstat") as fh:
        for line in fh:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1]) * 4096
    return 0


async def _client(
    host: str,
    port: int,
    request: bytes,
    read_bytes: int,
    gate: asyncio.Semaphore,
    release: asyncio.Event,
    counts: dict[str, int],
) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    try:
        async with gate:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), 30)
            counts["connected"] += 1
            await loop.sock_sendall(sock, request)
            got = 0
            while got < read_bytes:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), 30)
                if not data:
                    return
                got += len(data)
            counts["read_ok"] += 1
        await release.wait()
    except (OSError, TimeoutError):
        counts["failed"] += 1
    finally:
        sock.close()


async def _run(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    clients: int,
    read_bytes: int,
    hold: float,
    healthz: str,
) -> tuple[dict[str, int], int, float | None, float]:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    counts = {"connected": 0, "read_ok": 0, "failed": 0}
    gate = asyncio.Semaphore(100)  # connect in waves: the listen backlog is finite
    release = asyncio.Event()
    tasks = [
        asyncio.create_task(_client(host, port, request, read_bytes, gate, release, counts))
        for _ in range(clients)
    ]
    deadline = time.monotonic() + 60
    while counts["read_ok"] + counts["failed"] < clients and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    held_from = time.monotonic()
    tcp_peak = 0
    healthz_ms = None
    while time.monotonic() - held_from < hold:
        tcp_peak = max(tcp_peak, _tcp_mem_bytes())
        if healthz_ms is None:
            started = time.perf_counter()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(lambda: urllib.request.urlopen(healthz, timeout=10).read())
                healthz_ms = (time.perf_counter() - started) * 1000
        await asyncio.sleep(0.2)
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return counts, tcp_peak, healthz_ms, time.monotonic() - held_from


def slow_readers(
    roots: list[int],
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    healthz: str,
    clients: int = 1000,
    read_bytes: int = 16 * 1024,
    hold: float = 5.0,
) -> SlowReport:
    idle = rss_bytes([pid for root in roots for pid in tree(root)])
    with Sampler(roots, interval=0.1) as sampler:
        counts, tcp_peak, healthz_ms, held = asyncio.run(
            _run("127.0.0.1", port, path, headers, clients, read_bytes, hold, healthz)
        )
    time.sleep(0.5)  # let the server notice the closed connections
    return SlowReport(
        clients=clients,
        connected=counts["connected"],
        read_ok=counts["read_ok"],
        idle_rss=idle,
        peak_rss=sampler.peak_rss,
        kernel_tcp_bytes_peak=tcp_peak,
        healthz_ms_during=healthz_ms,
        seconds_held=held,
    )
