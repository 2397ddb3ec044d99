"""A small fault-injecting HTTP/1.1 TCP proxy for tests (threads and blocking sockets).

Every request is forwarded on its own upstream connection (``Connection: close`` is forced both
ways), so a fault applies to exactly one request. Faults wait in a queue; each is taken by the
first request that matches it, and acts on that request's response body:

* ``cut``: forward ``after`` bytes of the body, then close the connection (FIN);
* ``reset``: forward ``after`` bytes, then abort with an RST (``SO_LINGER`` 0);
* ``stall``: forward ``after`` bytes, pause ``seconds``, then go on (if the client still listens).

``throttle`` (bytes per second) slows every response body. Every exchange is recorded: method,
path, request headers, response status and how many body bytes reached the client.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

HEAD_LIMIT = 64 * 1024


@dataclass
class Fault:
    kind: Literal["cut", "reset", "stall"]
    after: int
    seconds: float = 0.0
    method: str = "GET"
    path_contains: str = "/audio"


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    status: int | None = None
    body_bytes: int = 0
    fault: Fault | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > HEAD_LIMIT:
            return None
        data = sock.recv(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


def _parse(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _close_head(first: str, headers: list[tuple[str, str]]) -> bytes:
    kept = [(n, v) for n, v in headers if n.lower() not in ("connection", "keep-alive")]
    kept.append(("Connection", "close"))
    return (first + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in kept) + "\r\n").encode("latin-1")


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.exchanges: list[Exchange] = []
        self.throttle: float | None = None
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.exchanges.clear()
        self.throttle = None

    def requests(self, method: str = "GET", path_contains: str = "/audio") -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method and path_contains in e.path]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method == method and fault.path_contains in path:
                    return self._faults.pop(i)
        return None

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        exchange: Exchange | None = None
        try:
            buffer = bytearray()
            head = _read_head(client, buffer)
            if head is None:
                return
            first, headers = _parse(head)
            method, _, rest = first.partition(" ")
            path = rest.rpartition(" ")[0]
            exchange = Exchange(method, path, {n.lower(): v for n, v in headers})
            exchange.fault = self._take_fault(method, path)
            with self._lock:
                self.exchanges.append(exchange)
            upstream = socket.create_connection(self.upstream, timeout=30)
            upstream.sendall(_close_head(first, headers))
            length = int(exchange.headers.get("content-length", "0") or 0)
            body = bytes(buffer[:length])
            upstream.sendall(body)
            remaining = length - len(body)
            while remaining > 0:
                data = client.recv(min(65536, remaining))
                if not data:
                    return
                upstream.sendall(data)
                remaining -= len(data)
            self._relay_response(upstream, client, exchange)
        except OSError:
            pass
        finally:
            if exchange is not None:
                exchange.done.set()
            if upstream is not None:
                upstream.close()
            with contextlib.suppress(OSError):
                client.close()

    def _relay_response(
        self, upstream: socket.socket, client: socket.socket, exchange: Exchange
    ) -> None:
        buffer = bytearray()
        head = _read_head(upstream, buffer)
        if head is None:
            return
        first, headers = _parse(head)
        exchange.status = int(first.split(" ")[1])
        client.sendall(_close_head(first, headers))
        fault = exchange.fault
        pending = bytes(buffer)
        while True:
            if not pending:
                pending = upstream.recv(65536)
                if not pending:
                    return
            chunk, pending = pending[:16384], pending[16384:]
            if fault is not None and exchange.body_bytes + len(chunk) >= fault.after:
                keep = fault.after - exchange.body_bytes
                if keep > 0:
                    client.sendall(chunk[:keep])
                    exchange.body_bytes += keep
                chunk = chunk[keep:]
                pending = chunk + pending
                if fault.kind == "cut":
                    client.shutdown(socket.SHUT_RDWR)
                    return
                if fault.kind == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return  # closing now sends an RST
                self._stop.wait(fault.seconds)  # stall, then carry on
                fault = None
                continue
            client.sendall(chunk)
            exchange.body_bytes += len(chunk)
            if self.throttle:
                time.sleep(len(chunk) / self.throttle)
