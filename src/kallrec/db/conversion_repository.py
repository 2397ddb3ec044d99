"""The conversion cache's bookkeeping (kallrec.converted): which conversions are kept, how many
bytes they take, when each was last used, and who is reading one right now.

It lives in the database so that every worker process and every replica shares one quota and one
LRU order. Two tables (schema.py):

* ``conversion_cache``: one row per kept conversion: its size (while it is being built, the
  bytes reserved for it) and when it was last used. The sum of ``size`` never passes the quota:
  room is reserved, evicting least recently used rows first, in one serialized transaction.
* ``conversion_pins``: a reader sending a kept file (or the process building one) holds a pin, a
  row that expires unless renewed. A row with a live pin is never evicted, so a file is never
  removed under a download; a pin left by a crashed process simply runs out.

Evicted files are removed by the process that evicted them, right after the transaction; the
same transaction hands them to the file reaper, which removes them if that process dies first.
A key waiting for the reaper cannot be reserved again until it is gone.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, func, insert, select, text, update

from kallrec.db import schema as t
from kallrec.db.engine import Database, locking
from kallrec.db.repository import _schedule_file_removal

BUILDING, READY = "building", "ready"
# Reservations take turns on PostgreSQL (SQLite's single writer already serializes them):
# "kallrec-cc" in ASCII.
_ADVISORY_LOCK_ID = 0x6B616C6C7265632D


class ConversionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def use(self, key: str, pin_id: str, now: float, pin_until: float) -> int | None:
        """A kept conversion's size, marked used and pinned by ``pin_id`` until ``pin_until``;
        None when it is not kept (never made, evicted, or still being built)."""
        cc = t.conversion_cache
        with self.db.write() as conn:
            # The row lock this update takes (PostgreSQL) makes an eviction in progress either
            # finish first (no row: None) or skip the row (locked, then pinned).
            size = conn.execute(
                update(cc)
                .where(cc.c.storage_key == key, cc.c.state == READY)
                .values(last_used_at=now)
                .returning(cc.c.size)
            ).scalar()
            if size is None:
                return None
            pins = t.conversion_pins
            # Readers that finished: without this, a file downloaded over and over while
            # nothing new is converted (reserve sweeps too) would gather a pin per download.
            conn.execute(delete(pins).where(pins.c.storage_key == key, pins.c.until < now))
            conn.execute(insert(pins).values(id=pin_id, storage_key=key, until=pin_until))
            return int(size)

    def reserve(
        self,
        key: str,
        recording_id: str,
        size: int,
        limit: int,
        pin_id: str,
        now: float,
        pin_until: float,
    ) -> list[str] | None:
        """Room for ``size`` bytes under ``limit``: the row is inserted (building, pinned by
        ``pin_id``) and the keys evicted to make room are returned; the caller removes those
        files, then calls ``Repository.forget_removed_files``. None, and nothing changed, when
        it does not fit even after evicting every unpinned row, when the key is already kept or
        being built, or while it waits for the reaper."""
        if size > limit:
            return None
        cc, pins = t.conversion_cache, t.conversion_pins
        with self.db.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
            conn.execute(delete(pins).where(pins.c.until < now))
            if _pinned_or_present(conn, key, now):
                return None
            conn.execute(delete(cc).where(cc.c.storage_key == key))  # an abandoned build's row
            used = conn.execute(select(func.coalesce(func.sum(cc.c.size), 0))).scalar_one()
            evicted = _choose_victims(conn, used + size - limit, now)
            if evicted is None:
                return None
            if evicted:
                conn.execute(delete(cc).where(cc.c.storage_key.in_(evicted)))
                for victim in evicted:
                    _schedule_file_removal(conn, victim, now)
            conn.execute(
                insert(cc).values(
                    storage_key=key,
                    recording_id=recording_id,
                    size=size,
                    state=BUILDING,
                    last_used_at=now,
                )
            )
            conn.execute(insert(pins).values(id=pin_id, storage_key=key, until=pin_until))
            return evicted

    def built(self, key: str, size: int, now: float) -> bool:
        """Marks a reserved conversion kept, at its real size (at most the reservation). False,
        and the row gone, if its recording was deleted or expired meanwhile or the reservation
        was lost (its pin ran out and it was evicted): the caller removes the object it stored."""
        cc, r = t.conversion_cache, t.recordings
        with self.db.write() as conn:
            recording_id = conn.execute(
                select(cc.c.recording_id).where(cc.c.storage_key == key, cc.c.state == BUILDING)
            ).scalar()
            if recording_id is None:
                return False
            # Locked like delete_recording locks it: a delete either sees this conversion kept
            # (and hands it to the reaper with the rest) or happened first and is seen here.
            query = select(r.c.status, r.c.deleted_at).where(r.c.id == recording_id)
            rec = conn.execute(locking(query, conn, skip_locked=False)).first()
            if rec is None or rec.deleted_at is not None or rec.status != "ready":
                conn.execute(delete(cc).where(cc.c.storage_key == key))
                conn.execute(
                    delete(t.conversion_pins).where(t.conversion_pins.c.storage_key == key)
                )
                return False
            conn.execute(
                update(cc)
                .where(cc.c.storage_key == key)
                .values(state=READY, size=size, last_used_at=now)
            )
            return True

    def abandon(self, key: str, pin_id: str) -> None:
        """Gives up a reservation (the build failed or outgrew it)."""
        cc = t.conversion_cache
        with self.db.write() as conn:
            conn.execute(delete(cc).where(cc.c.storage_key == key, cc.c.state == BUILDING))
            conn.execute(delete(t.conversion_pins).where(t.conversion_pins.c.id == pin_id))

    def forget(self, key: str) -> None:
        """Drops a kept conversion whose object turned out to be missing or damaged."""
        with self.db.write() as conn:
            conn.execute(delete(t.conversion_cache).where(t.conversion_cache.c.storage_key == key))

    def pin(self, pin_id: str, until: float) -> None:
        """Moves a pin's expiry (renewal while reading; release: a short grace, or now)."""
        pins = t.conversion_pins
        with self.db.write() as conn:
            conn.execute(update(pins).where(pins.c.id == pin_id).values(until=until))

    def usage(self) -> tuple[int, int]:
        """(kept and reserved conversions, their bytes)."""
        cc = t.conversion_cache
        with self.db.read() as conn:
            count, used = conn.execute(
                select(func.count(), func.coalesce(func.sum(cc.c.size), 0))
            ).one()
            return int(count), int(used)

    def kept_keys(self) -> list[str]:
        """Kept conversions, least recently used first."""
        cc = t.conversion_cache
        with self.db.read() as conn:
            rows = conn.execute(
                select(cc.c.storage_key)
                .where(cc.c.state == READY)
                .order_by(cc.c.last_used_at, cc.c.storage_key)
            )
            return [key for (key,) in rows]


def _pinned_or_present(conn: Connection, key: str, now: float) -> bool:
    """Whether ``key`` must not be (re)built now: kept, being built by a live process, or
    still waiting for the file reaper."""
    cc, pins, fr = t.conversion_cache, t.conversion_pins, t.file_reaper
    state = conn.execute(select(cc.c.state).where(cc.c.storage_key == key)).scalar()
    if state == READY:
        return True
    if state == BUILDING:
        live = select(pins.c.id).where(pins.c.storage_key == key, pins.c.until >= now)
        if conn.execute(live.limit(1)).first() is not None:
            return True
    return conn.execute(select(fr.c.storage_key).where(fr.c.storage_key == key)).first() is not None


def _choose_victims(conn: Connection, excess: int, now: float) -> list[str] | None:
    """The least recently used unpinned rows that free ``excess`` bytes ([] if nothing needs
    freeing); None if all of them together would not."""
    if excess <= 0:
        return []
    cc, pins = t.conversion_cache, t.conversion_pins
    pinned = select(pins.c.storage_key).where(pins.c.until >= now)
    query = (
        select(cc.c.storage_key, cc.c.size)
        .where(cc.c.storage_key.not_in(pinned))
        .order_by(cc.c.last_used_at, cc.c.storage_key)
    )
    # Rows a reader is pinning at this moment are locked by its update: skipped, not evicted.
    victims: list[str] = []
    for key, size in conn.execute(locking(query, conn, skip_locked=True)):
        victims.append(key)
        excess -= size
        if excess <= 0:
            return victims
    return None
