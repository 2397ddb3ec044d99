"""Fixtures for the end-to-end tests: real `kallrec serve` processes on real ports.

* ``server``: one server per test module (module scope), default settings, its own data dir.
* ``start_server``: a factory for servers a single test needs with its own settings (function
  scope); also used to restart a server on the same data directory.

Every server's output goes to a log file; when a test fails, the tail of the log of every server
it used is attached to the report. Servers are always stopped (SIGTERM, then SIGKILL of the whole
process group), at fixture teardown and, as a last resort, at interpreter exit.
"""

from __future__ import annotations

import atexit
import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.e2e.helpers import Server

_live: list[Server] = []  # servers whose fixture has not been torn down yet
_counter = itertools.count(1)


def _stop_all_at_exit() -> None:
    for server in _live:
        server.stop(timeout=5)


atexit.register(_stop_all_at_exit)


class ServerFactory:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: list[Server] = []

    def __call__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        workers: int | None = None,
        start: bool = True,
        name: str | None = None,
    ) -> Server:
        """A server on a new data dir (or `data_dir`), started unless `start=False`."""
        n = next(_counter)
        name = name or f"kallrec-{n}"
        if data_dir is None:
            data_dir = self.base / f"{name}-data"
        server = Server(
            name=name,
            data_dir=data_dir,
            log_path=self.base / f"{name}.log",
            env=dict(env or {}),
            workers=workers,
        )
        self.servers.append(server)
        _live.append(server)
        if start:
            server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            finally:
                _live.remove(server)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory.mktemp("e2e"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def server(module_servers: ServerFactory) -> Server:
    """A server with default settings shared by the tests of one module."""
    return module_servers()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.failed:
        for server in _live:
            report.sections.append(
                (f"kallrec server {server.name} ({server.log_path})", server.log_tail())
            )
    return report
