"""A real S3 endpoint for tests: moto's server mode (real HTTP, the S3 wire protocol) on loopback.

moto keeps buckets and objects in this process's memory, so a server stopped and started again on
the same port (``stop``/``start``) comes back with its data: how the tests make "the store is
down" and "the store is back". Note that moto accepts forged and expired presigned URLs: the
signatures are checked against botocore instead (tests/storage/test_sigv4.py).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import socket
import subprocess
import sys
import time

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY = "kallrec-test"
SECRET_KEY = "kallrec-test-secret"
REGION = "us-east-1"
_buckets = itertools.count(1)

# werkzeug logs every request to stderr; the tests' output should stay readable.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoS3:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: ThreadedMotoServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> MotoS3:
        assert self._server is None, "already running"
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket: connections are refused until start()
        (ThreadedMotoServer.stop alone leaves the socket open, so clients would hang instead)."""
        if self._server is None:
            return
        self._server.stop()
        inner = self._server._server
        if inner is not None:
            inner.server_close()
        self._server = None

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"kallrec-test-{next(_buckets)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def keys(self, bucket: str) -> dict[str, int]:
        """Every key in the bucket and its size."""
        client = self.client()
        try:
            out: dict[str, int] = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    out[item["Key"]] = item["Size"]
            return out
        finally:
            client.close()

    def read(self, bucket: str, key: str) -> bytes:
        client = self.client()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                return body.read()  # type: ignore[no-any-return]
            finally:
                body.close()
        finally:
            client.close()

    def env(self, storage_url: str) -> dict[str, str]:
        """The KALLREC_* settings that point a server or the CLI at this endpoint."""
        return {
            "KALLREC_STORAGE_URL": storage_url,
            "KALLREC_S3_ENDPOINT_URL": self.endpoint,
            "KALLREC_S3_REGION": REGION,
            "KALLREC_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "KALLREC_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }


class MotoProcess(MotoS3):
    """The same endpoint in a child process: for measurements that moto's own allocations in
    this process would spoil (its data is lost on stop)."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self, timeout: float = 30) -> MotoProcess:
        assert self._proc is None, "already running"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            assert self._proc.poll() is None, "moto server exited"
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"moto server not listening after {timeout}s")

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel completes the handshake),
        but nothing answers: a hung store."""
        assert self._proc is not None, "not running"
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is None:
            return
        self.resume()  # a stopped process would not act on SIGTERM
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None
