"""The process `kallrec serve` becomes once it has prepared the data dir: Granian and nothing else.

`kallrec serve` parses its options, runs migrations and the first-start demo, prints where it
listens, then replaces itself (same PID) with ``python -m kallrec.server``, which reads the
settings it was handed through ``KALLREC_*`` and starts Granian. Granian forks its workers from
this process, so everything imported here is in every worker too: not the CLI (Typer, Rich,
the client), which would cost each process ~20 MiB for nothing.
"""

from __future__ import annotations

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings

from kallrec.config import Settings


def main() -> None:
    settings = Settings.from_env()
    Granian(
        "kallrec.app:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        backlog=settings.listen_backlog,
        backpressure=settings.worker_concurrency,
        # A smaller per-connection buffer bounds memory under many slow readers.
        http1_settings=HTTP1Settings(max_buffer_size=settings.http1_buffer_size),
        log_level=settings.log_level,  # type: ignore[arg-type]
        respawn_failed_workers=True,
    ).serve()


if __name__ == "__main__":
    main()
