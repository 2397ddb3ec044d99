"""The process `kallrec serve` becomes once it has prepared the data dir: Granian and nothing else.

`kallrec serve` parses its options, runs migrations and the first-start demo, prints where it
listens, then replaces itself (same PID) with ``python -m kallrec.server``, which reads the
settings it was handed through ``KALLREC_*`` and starts Granian. Granian forks its workers from
this process, so everything imported here is in every worker too: not the CLI (Typer, Rich,
the client), which would cost each process ~20 MiB for nothing.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from kallrec.config import Settings
from kallrec.datadir import PRIVATE_UMASK


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (often 1,024 of 1,048,576): every
    connection is a descriptor, and a worker is meant to hold thousands of them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


def logging_config(level: str) -> dict[str, Any]:
    """Granian's logging configuration plus kallrec's own loggers on the same console at the
    configured level (Granian's replaces the whole ``loggers`` table, so its two come along);
    without it only warnings reached the log, through Python's last-resort handler."""
    level = level.upper()
    console = {"handlers": ["console"], "level": level, "propagate": False}
    return {
        "loggers": {
            "_granian": console,
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "kallrec": console,
        }
    }


class SipProcess:
    """``python -m kallrec.sip`` beside the HTTP workers (KALLREC_SIP_LISTEN), restarted when it
    dies, stopped with the server. It is its own process, not a Granian worker: SIP and RTP are
    UDP, which Granian does not serve, and a call must not share a worker's event loop with
    thousands of downloads."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="kallrec-sip", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            self._child = subprocess.Popen(
                [sys.executable, "-m", "kallrec.sip"], preexec_fn=_die_with_parent
            )
            code = self._child.wait()
            if self._stopping.is_set():
                return
            print(f"kallrec: the SIP process exited ({code}); restarting it", file=sys.stderr)
            # A process that dies at once (a port taken) is not restarted in a tight loop.
            self._stopping.wait(max(0.0, 2.0 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stopping.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()


def _die_with_parent() -> None:
    """In the child: SIGTERM when the server process goes, however it goes (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    settings = Settings.from_env()
    os.umask(PRIVATE_UMASK)
    raise_open_files_limit()
    sip = SipProcess() if settings.sip_listen else None
    if sip is not None:
        sip.start()
    try:
        serve(settings)
    finally:
        if sip is not None:
            sip.stop()


def serve(settings: Settings) -> None:
    Granian(
        "kallrec.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        backlog=settings.listen_backlog,
        backpressure=settings.worker_concurrency,
        # HTTP/1 only: in 'auto' mode Granian first waits for the bytes that tell HTTP/1 from
        # HTTP/2, with no timeout, so a socket that never sends anything holds a slot forever
        # (2,060 of them starved /healthz). HTTP/1's header timeout starts at accept and also
        # closes idle keep-alive connections. (Cleartext HTTP/2 has no browser users; a TLS
        # front speaks HTTP/2 to clients and HTTP/1.1 to kallrec.)
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.header_timeout_seconds * 1000),
            # A smaller per-connection buffer bounds memory under many slow readers.
            max_buffer_size=settings.http1_buffer_size,
        ),
        # Granian annotates its LogLevels (a str Enum); the setting's string is passed as it
        # always was, and Granian looks it up by value.
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        log_dictconfig=logging_config(settings.log_level),
        respawn_failed_workers=True,
    ).serve()


if __name__ == "__main__":
    main()
