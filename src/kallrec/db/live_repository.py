"""The queries of live calls across replicas: the segment index, the writers, the end notice.

Kept apart from ``repository.py``: these rows belong to the live path alone (live/flush.py writes
them, live/finalize.py reads and removes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from kallrec import timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database, locking

# The channel `NOTIFY` carries ended session ids on (PostgreSQL): live/notify.py listens on it.
SESSION_ENDED_CHANNEL = "kallrec_session_ended"


@dataclass(frozen=True)
class SegmentRow:
    id: str
    session_id: str
    writer: str
    storage_key: str  # the packed object
    byte_offset: int  # where the segment starts in it
    start_sample: int
    end_sample: int
    size: int


def notify_session_ended(conn: Connection, session_id: str) -> None:
    """Inside the transaction that ends the session: PostgreSQL delivers the notice on commit
    (never for a rolled-back end), to every replica listening. SQLite has no such thing: one
    machine, where the process that ended it tells its own streams and the others poll."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :id)"),
            {"channel": SESSION_ENDED_CHANNEL, "id": session_id},
        )


def _upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str], column: str
) -> Any:
    """INSERT … ON CONFLICT DO UPDATE (both PostgreSQL and SQLite have it): a heartbeat racing
    the registration of the same writer updates instead of failing."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).values(rows)
        return pg.on_conflict_do_update(index_elements=keys, set_={column: pg.excluded[column]})
    lite = sqlite.insert(table).values(rows)
    return lite.on_conflict_do_update(index_elements=keys, set_={column: lite.excluded[column]})


def _reap(conn: Connection, keys: Sequence[str], when: float) -> None:
    """Hands objects to the file reaper (``lifecycle.reap_files`` removes them)."""
    fr = t.file_reaper
    present = set(
        conn.execute(select(fr.c.storage_key).where(fr.c.storage_key.in_(list(keys)))).scalars()
    )
    rows = [{"storage_key": k, "remove_after": when} for k in keys if k not in present]
    if rows:
        conn.execute(insert(fr), rows)


class LiveRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writers -----------------------------------------------------------------------------

    def register_writer(self, session_id: str, writer: str) -> None:
        self.heartbeat([(session_id, writer)])

    def heartbeat(self, writers: Sequence[tuple[str, str]]) -> None:
        """Refreshes (or adds) the rows of every writer of a flush round, in one statement."""
        if not writers:
            return
        now = timeutil.now()
        rows = [{"session_id": sid, "writer": writer, "seen_at": now} for sid, writer in writers]
        with self.db.write() as conn:
            conn.execute(_upsert(conn, t.live_writers, rows, ["session_id", "writer"], "seen_at"))

    def remove_writer(self, session_id: str, writer: str) -> None:
        w = t.live_writers
        with self.db.write() as conn:
            conn.execute(delete(w).where(w.c.session_id == session_id, w.c.writer == writer))

    def active_writers(self, session_id: str, seen_since: float) -> list[str]:
        w = t.live_writers
        with self.db.read() as conn:
            rows = conn.execute(
                select(w.c.writer).where(w.c.session_id == session_id, w.c.seen_at >= seen_since)
            )
            return list(rows.scalars())

    # -- segments ----------------------------------------------------------------------------

    def add_segments(self, storage_key: str, rows: Sequence[SegmentRow]) -> set[str]:
        """Indexes the segments of one uploaded packed object, in one transaction; returns the
        ids refused because their session was finalized meanwhile (a writer that was paused
        past its heartbeat: never read) or is unknown. When all of them are refused, the object
        is nobody's: it goes to the file reaper at once."""
        if not rows:
            return set()
        now = timeutil.now()
        s = t.sessions
        with self.db.write() as conn:
            wanted = {row.session_id for row in rows}
            open_sessions = set(
                conn.execute(
                    select(s.c.id).where(s.c.id.in_(wanted), s.c.finalized_at.is_(None))
                ).scalars()
            )
            accepted = [row for row in rows if row.session_id in open_sessions]
            if not accepted:
                _reap(conn, [storage_key], now)
                return {row.id for row in rows}
            conn.execute(insert(t.live_objects).values(storage_key=storage_key, created_at=now))
            conn.execute(
                insert(t.live_segments),
                [
                    {
                        "id": row.id,
                        "session_id": row.session_id,
                        "writer": row.writer,
                        "storage_key": storage_key,
                        "byte_offset": row.byte_offset,
                        "start_sample": row.start_sample,
                        "end_sample": row.end_sample,
                        "size": row.size,
                        "created_at": now,
                    }
                    for row in accepted
                ],
            )
            return {row.id for row in rows if row.session_id not in open_sessions}

    def segments(self, session_id: str) -> list[SegmentRow]:
        """The session's segments in the order they are applied (id: the order they were cut)."""
        g = t.live_segments
        with self.db.read() as conn:
            rows = conn.execute(select(g).where(g.c.session_id == session_id).order_by(g.c.id))
            return [
                SegmentRow(
                    r["id"],
                    r["session_id"],
                    r["writer"],
                    r["storage_key"],
                    r["byte_offset"],
                    r["start_sample"],
                    r["end_sample"],
                    r["size"],
                )
                for r in rows.mappings()
            ]

    def span(self, session_id: str) -> tuple[int, int] | None:
        """The first and the furthest sample stored for the session so far, or None."""
        g = t.live_segments
        with self.db.read() as conn:
            row = conn.execute(
                select(func.min(g.c.start_sample), func.max(g.c.end_sample)).where(
                    g.c.session_id == session_id
                )
            ).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def forget_segments(self, session_id: str) -> None:
        """Drops a finalized session's segments and writers; a packed object none of whose
        segments is left goes to the file reaper. Its ``live_objects`` row is locked first
        (PostgreSQL), so two sessions sharing an object, finalized at the same moment, cannot
        both leave it to the other."""
        g, o = t.live_segments, t.live_objects
        now = timeutil.now()
        with self.db.write() as conn:
            keys = sorted(
                set(
                    conn.execute(
                        select(g.c.storage_key).where(g.c.session_id == session_id)
                    ).scalars()
                )
            )
            if keys:
                conn.execute(
                    locking(
                        select(o.c.storage_key)
                        .where(o.c.storage_key.in_(keys))
                        .order_by(o.c.storage_key),
                        conn,
                        skip_locked=False,
                    )
                ).all()
            conn.execute(delete(g).where(g.c.session_id == session_id))
            if keys:
                still_used = set(
                    conn.execute(
                        select(g.c.storage_key).where(g.c.storage_key.in_(keys)).distinct()
                    ).scalars()
                )
                unused = [key for key in keys if key not in still_used]
                if unused:
                    conn.execute(delete(o).where(o.c.storage_key.in_(unused)))
                    _reap(conn, unused, now)
            conn.execute(delete(t.live_writers).where(t.live_writers.c.session_id == session_id))

    def postpone_job(self, job_id: str, delay: float) -> None:
        """Puts a claimed job back for later without counting the claim as an attempt: it did
        not fail, it is waiting for live writers to finish."""
        j = t.jobs
        now = timeutil.now()
        with self.db.write() as conn:
            conn.execute(
                update(j)
                .where(j.c.id == job_id)
                .values(
                    lease_until=None,
                    run_after=now + delay,
                    attempts=j.c.attempts - 1,
                    updated_at=now,
                )
            )

    # -- one-time tasks ------------------------------------------------------------------------

    def claim_first_start(self, name: str) -> bool:
        """True for exactly one caller per ``name``, across every replica, ever."""
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(t.first_start_claims).values(name=name, claimed_at=timeutil.now())
                )
        except IntegrityError:
            return False
        return True
