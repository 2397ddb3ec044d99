"""Ending a session held by another replica: PostgreSQL ``LISTEN``/``NOTIFY``.

The transaction that ends a session sends its id on SESSION_ENDED_CHANNEL (delivered on commit:
db/live_repository.notify_session_ended); every process listens on one connection of its own and
tells its streams of that session to finish (``LiveSessions.forget``): the socket is closed with
``session.ended`` at once, wherever it is, its writer flushes what is left and goes, and the
finalize job (waiting for it) runs once.

Should the listening connection drop, notices sent meanwhile are lost; each stream also checks
its session's status every few seconds (api/stream.py), which is also all SQLite needs: one
machine, where the process that ended a session tells its own streams directly.
"""

from __future__ import annotations

import logging

import anyio

from kallrec.db.live_repository import SESSION_ENDED_CHANNEL
from kallrec.runtime import Runtime

log = logging.getLogger("kallrec.live")

RECONNECT_SECONDS = 1.0


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://``) as libpq takes it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_ended_sessions(rt: Runtime) -> None:
    if rt.db.dialect != "postgresql":
        return
    import psycopg

    url = libpq_url(rt.settings.resolved_database_url)
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            async with conn:
                await conn.execute(f"LISTEN {SESSION_ENDED_CHANNEL}")
                async for notice in conn.notifies():
                    rt.live.forget(notice.payload)
        except Exception as exc:
            log.warning("listening for ended sessions failed (%s); reconnecting", exc)
        await anyio.sleep(RECONNECT_SECONDS)
