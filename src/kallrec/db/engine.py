"""Connections: SQLite in WAL mode with one writer per process (the default), or PostgreSQL
(psycopg 3) when several replicas share one database."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, create_engine, event

from kallrec.database_url import normalize_url

# Connections one process may hold at most (see docs/deployment.md for sizing).
DEFAULT_POOL_SIZE = 10

_Query = TypeVar("_Query", bound="Select[Any]")


class Database:
    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = normalize_url(url)
        self.engine = _make_engine(self.url, pool_size)
        self.dialect = self.engine.dialect.name
        # SQLite allows one writer at a time; serialising our own writers here means they queue
        # on a cheap lock instead of spinning in busy_timeout against each other. PostgreSQL
        # runs writers concurrently and serialises them per row (see ``locking``).
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # Take the write lock up front: a deferred transaction that reads and then
                # writes fails with SQLITE_BUSY when another process wrote in between.
                conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn

    def ping(self) -> None:
        with self.read() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        self.engine.dispose()


def locking(query: _Query, conn: Connection, *, skip_locked: bool = True, of: Any = None) -> _Query:
    """``query`` taking row locks on PostgreSQL, for read-then-write transactions.

    ``skip_locked`` (claims: jobs, webhook deliveries): rows another transaction is claiming are
    passed over instead of waited for, so replicas never get the same row and never queue behind
    each other. Without it (a read that decides an update): wait, then see the committed row.
    ``of``: the table(s) to lock when the query joins others. On SQLite this changes nothing:
    ``Database.write`` already holds the database's single write lock (BEGIN IMMEDIATE).
    """
    if conn.dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked, of=of)


def _make_engine(url: str, pool_size: int) -> Engine:
    if url.startswith("postgresql"):
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            # A replica outlives database restarts and failovers: test a pooled connection
            # before use (one round trip) rather than fail the request that draws it.
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={"application_name": "kallrec", "connect_timeout": 10},
        )
    path = url.removeprefix("sqlite:///")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE is ours to issue.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        _enable_wal(cur)
        # FULL: a committed 'ready' or a queued job survives power loss, not just a crash.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

    return engine


def _enable_wal(cur: sqlite3.Cursor) -> None:
    """Switches a new database to WAL. The switch needs the database to itself and SQLite does
    not wait for it (no busy handler): several processes opening a new file at once (replicas,
    workers, the CLI) must retry."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
