"""Every query kallrec makes, named after the use case it serves.

All lookups of tenant data take the organization and the mode (live/test): a row of another
organization or mode is simply not found, which is how foreign ids become plain 404s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from kallrec import ids, timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database, locking
from kallrec.db.live_repository import notify_session_ended
from kallrec.db.models import ApiKey, Job, Organization, Recording, Session
from kallrec.object_keys import converted_keys

ABANDONED_AFTER_SECONDS = 600
# Recordings expired per transaction, so a large purge never holds the write lock for long.
EXPIRE_BATCH = 500

# Called inside the transaction that changed the row, with the row as it now is (see events.py).
Emit = Callable[[Connection, Any], None]


class UnknownCursor(LookupError):
    def __init__(self, param: str, value: str) -> None:
        super().__init__(value)
        self.param = param
        self.value = value


@dataclass(frozen=True)
class Page:
    limit: int = 20
    starting_after: str | None = None
    ending_before: str | None = None


@dataclass(frozen=True)
class RecordingFilter:
    session_id: str | None = None
    channel: str | None = None
    status: str | None = None
    created_gte: float | None = None
    created_lt: float | None = None


@dataclass(frozen=True)
class SessionFilter:
    status: str | None = None
    created_gte: float | None = None
    created_lt: float | None = None
    # Text searched (case-insensitively) in the metadata, carrier ids and phone number (the
    # console's search box); an exact session id matches too.
    text: str | None = None

    # One of the carrier's ids kept on the session (call or stream id, any carrier).
    carrier_id: str | None = None


@dataclass(frozen=True)
class NewRecording:
    id: str
    channel: str
    staging_key: str | None


def live_channels(recording_channels: str) -> list[str]:
    """The recordings a live session becomes: ``mixed``, and for ``dual`` its two speakers."""
    return ["mixed", "agent", "customer"] if recording_channels == "dual" else ["mixed"]


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- organizations ---------------------------------------------------------------------

    def get_org_by_name(self, name: str) -> Organization | None:
        with self.db.read() as conn:
            row = conn.execute(select(t.organizations).where(t.organizations.c.name == name))
            found = row.mappings().first()
        return Organization.from_row(found) if found else None

    def get_org(self, org_id: str) -> Organization | None:
        with self.db.read() as conn:
            found = (
                conn.execute(select(t.organizations).where(t.organizations.c.id == org_id))
                .mappings()
                .first()
            )
        return Organization.from_row(found) if found else None

    def ensure_org(self, name: str, retention_days: int) -> tuple[Organization, bool]:
        """The organization called ``name``, created if missing; True when it was created."""
        existing = self.get_org_by_name(name)
        if existing:
            return existing, False
        org = Organization(ids.new_id("org"), name, retention_days, timeutil.now())
        try:
            with self.db.write() as conn:
                conn.execute(insert(t.organizations).values(**org.__dict__))
        except IntegrityError:  # another process created it first
            again = self.get_org_by_name(name)
            assert again is not None
            return again, False
        return org, True

    def list_orgs(self) -> list[Organization]:
        with self.db.read() as conn:
            rows = conn.execute(select(t.organizations).order_by(t.organizations.c.name))
            return [Organization.from_row(r) for r in rows.mappings()]

    def set_record_by_default(self, org_id: str, enabled: bool) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(t.organizations)
                .where(t.organizations.c.id == org_id)
                .values(record_by_default=enabled)
            )

    def set_retention(self, org_id: str, days: int) -> None:
        """Changes the retention of the organization and of its recordings still holding audio."""
        seconds = days * 86400
        with self.db.write() as conn:
            conn.execute(
                update(t.organizations)
                .where(t.organizations.c.id == org_id)
                .values(retention_days=days)
            )
            conn.execute(
                update(t.recordings)
                .where(
                    t.recordings.c.org_id == org_id,
                    t.recordings.c.status.in_(("processing", "ready", "failed")),
                )
                .values(expires_at=t.recordings.c.created_at + seconds)
            )

    # -- API keys --------------------------------------------------------------------------

    def insert_key(self, key: ApiKey) -> None:
        with self.db.write() as conn:
            conn.execute(insert(t.api_keys).values(**key.__dict__))

    def find_key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self.db.read() as conn:
            row = (
                conn.execute(select(t.api_keys).where(t.api_keys.c.hash == key_hash))
                .mappings()
                .first()
            )
        return ApiKey.from_row(row) if row else None

    def list_keys(self, org_id: str | None = None) -> list[tuple[ApiKey, str]]:
        query = (
            select(t.api_keys, t.organizations.c.name.label("org_name"))
            .join(t.organizations, t.organizations.c.id == t.api_keys.c.org_id)
            .order_by(t.organizations.c.name, t.api_keys.c.id)
        )
        if org_id:
            query = query.where(t.api_keys.c.org_id == org_id)
        with self.db.read() as conn:
            return [(ApiKey.from_row(r), r["org_name"]) for r in conn.execute(query).mappings()]

    def revoke_key(
        self, *, key_id: str | None = None, key_hash: str | None = None
    ) -> ApiKey | None:
        column, value = (t.api_keys.c.id, key_id) if key_id else (t.api_keys.c.hash, key_hash)
        with self.db.write() as conn:
            conn.execute(
                update(t.api_keys)
                .where(column == value, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=timeutil.now())
            )
            row = conn.execute(select(t.api_keys).where(column == value)).mappings().first()
        return ApiKey.from_row(row) if row else None

    def touch_keys(self, last_used: dict[str, float]) -> None:
        if not last_used:
            return
        with self.db.write() as conn:
            # One order for every process: two replicas flushing overlapping keys at once on
            # PostgreSQL would otherwise lock the rows in opposite orders and deadlock.
            for key_id, when in sorted(last_used.items()):
                conn.execute(
                    update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=when)
                )

    # -- sessions --------------------------------------------------------------------------

    def insert_session(self, session: Session, emit: Emit | None = None) -> None:
        with self.db.write() as conn:
            conn.execute(insert(t.sessions).values(**session.__dict__))
            if emit:
                emit(conn, session)

    def get_session(self, org_id: str, livemode: bool, session_id: str) -> Session | None:
        with self.db.read() as conn:
            return _get_session(conn, org_id, livemode, session_id)

    def list_sessions(
        self, org_id: str, livemode: bool, flt: SessionFilter, page: Page
    ) -> tuple[list[Session], bool]:
        s = t.sessions
        conds = [s.c.org_id == org_id, s.c.livemode == livemode]
        if flt.status:
            conds.append(s.c.status == flt.status)
        if flt.created_gte is not None:
            conds.append(s.c.created_at >= flt.created_gte)
        if flt.created_lt is not None:
            conds.append(s.c.created_at < flt.created_lt)
        if flt.text:
            conds.append(_session_text_matches(flt.text))

        if flt.carrier_id is not None:
            # carrier_ids is a JSON object of strings: the id, JSON-quoted, is one of its values
            # (or keys, which are names like call_sid: no id looks like one).
            quoted = json.dumps(flt.carrier_id)
            pattern = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conds.append(s.c.carrier_ids.like(f"%{pattern}%", escape="\\"))
        with self.db.read() as conn:
            rows, has_more = _paginate(conn, s, and_(*conds), page, org_id, livemode)
        return [Session.from_row(row) for row in rows], has_more

    def recordings_by_id(self, recording_ids: Sequence[str]) -> dict[str, Recording]:
        """The (not deleted) recordings among ``recording_ids``: sessions show their mix's."""
        wanted = sorted(set(filter(None, recording_ids)))
        if not wanted:
            return {}
        r = t.recordings
        with self.db.read() as conn:
            rows = conn.execute(select(r).where(r.c.id.in_(wanted), r.c.deleted_at.is_(None)))
            return {row["id"]: Recording.from_row(row) for row in rows.mappings()}

    def live_recordings(self, session_id: str) -> list[Recording]:
        """The recordings made when the session ended, deleted ones included."""
        r = t.recordings
        with self.db.read() as conn:
            rows = conn.execute(
                select(r).where(r.c.session_id == session_id, r.c.source == "live").order_by(r.c.id)
            )
            return [Recording.from_row(row) for row in rows.mappings()]

    def add_carrier_ids(
        self, session_id: str, carrier_ids: dict[str, str], emit: Emit | None = None
    ) -> Session:
        """Merges a carrier's ids (call, stream) into the session's, e.g. when its media stream
        starts; ids already kept under the same name are replaced. ``emit`` (an event about the
        session, e.g. its carrier connecting) sees the session with them."""
        with self.db.write() as conn:
            session = _get_session_any(conn, session_id, lock=True)
            merged = {**session.carrier_ids_dict, **carrier_ids}
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id)
                .values(carrier_ids=json.dumps(merged, separators=(",", ":")))
            )
            updated = _get_session_any(conn, session_id)
            if emit is not None:
                emit(conn, updated)
            return updated

    def emit_session_event(self, session_id: str, emit: Emit) -> None:
        """Records an event about the session as it is now (e.g. its carrier leaving)."""
        with self.db.write() as conn:
            emit(conn, _get_session_any(conn, session_id))

    def get_session_any(self, session_id: str) -> Session | None:
        """For the stream and background jobs, which act on behalf of no particular key."""
        with self.db.read() as conn:
            row = conn.execute(select(t.sessions).where(t.sessions.c.id == session_id))
            found = row.mappings().first()
        return Session.from_row(found) if found else None

    def get_session_by_token(self, token: str) -> Session | None:
        with self.db.read() as conn:
            row = conn.execute(select(t.sessions).where(t.sessions.c.stream_token == token))
            found = row.mappings().first()
        return Session.from_row(found) if found else None

    def replace_stream_token(self, session_id: str, token: str, expires_at: float) -> Session:
        with self.db.write() as conn:
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id, t.sessions.c.status != "ended")
                .values(stream_token=token, stream_token_expires_at=expires_at)
            )
            return _get_session_any(conn, session_id)

    def start_session(
        self, session_id: str, node: str | None = None, emit: Emit | None = None
    ) -> Session:
        """created → active on the first connect (emitting once); later connects change nothing."""
        now = timeutil.now()
        with self.db.write() as conn:
            result = conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id, t.sessions.c.status == "created")
                .values(status="active", started_at=now, last_audio_at=now)
            )
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id, t.sessions.c.status != "ended")
                .values(stream_node=node)
            )
            session = _get_session_any(conn, session_id)
            if result.rowcount == 1 and emit:
                emit(conn, session)
            return session

    def touch_session_audio(self, session_id: str, when: float) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id, t.sessions.c.status != "ended")
                .values(last_audio_at=when)
            )

    def idle_sessions(self, idle_since: float, limit: int = 500) -> list[Session]:
        """Open sessions that have had no audio (or no connection) since ``idle_since``."""
        s = t.sessions
        last = func.coalesce(s.c.last_audio_at, s.c.created_at)
        with self.db.read() as conn:
            rows = conn.execute(
                select(s)
                .where(s.c.status.in_(("created", "active")), last < idle_since)
                .limit(limit)
            )
            return [Session.from_row(r) for r in rows.mappings()]

    def end_session(
        self,
        org_id: str,
        livemode: bool,
        session_id: str,
        reason: str = "completed",
        emit: Emit | None = None,
    ) -> Session | None:
        """Ends a session once (later calls return it unchanged, reason included).

        When it records, its recordings are made here, ``processing`` and without audio yet, so
        that whoever lists them after the end sees them; the job that fills them from the live
        tracks is queued in the same transaction."""
        with self.db.write() as conn:
            # Locked (PostgreSQL): a concurrent end waits, then sees 'ended' and does nothing.
            session = _get_session(conn, org_id, livemode, session_id, lock=True)
            if session is None or session.status == "ended":
                return session
            now = timeutil.now()
            recording_id = None
            if session.recording_enabled:
                placeholders = [
                    NewRecording(ids.new_id("rec"), channel, None)
                    for channel in live_channels(session.recording_channels)
                ]
                self._insert_recordings(
                    conn, session, placeholders, now, source="live", process=False
                )
                recording_id = placeholders[0].id
                # Any replica finalizes it: the audio is in storage (live/flush.py).
                _enqueue(conn, "finalize_session", session_id, now)
            conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == session_id)
                .values(
                    status="ended",
                    ended_at=now,
                    started_at=session.started_at or now,
                    stream_token=None,
                    stream_token_expires_at=None,
                    end_reason=reason,
                    recording_id=recording_id,
                )
            )
            ended = _get_session(conn, org_id, livemode, session_id)
            assert ended is not None
            # Every replica holding its stream hears of it on commit (live/notify.py).
            notify_session_ended(conn, session_id)
            if emit:
                emit(conn, ended)
            return ended

    def finalize_session(
        self,
        session_id: str,
        staged: Sequence[NewRecording],
        *,
        failed: Sequence[NewRecording] = (),
        failure_reason: str = "no_audio",
        emit_failed: Emit | None = None,
    ) -> list[str] | None:
        """Gives a live session's recordings their audio, once; None when already done.

        ``staged``: recordings whose audio is now staged (each gets its encoding job, unless it
        was deleted meanwhile: then its staging goes to the reaper). ``failed``: recordings
        there is no audio for, marked failed (``failure_reason``) with their event. Either may
        name recordings that do not exist yet (a session ended before they were made at the
        end): they are made here. Returns the recordings given audio."""
        with self.db.write() as conn:
            session = _get_session_any(conn, session_id, lock=True)
            if session.finalized_at is not None:
                return None
            now = timeutil.now()
            conn.execute(
                update(t.sessions).where(t.sessions.c.id == session_id).values(finalized_at=now)
            )
            r = t.recordings
            wanted = [item.id for item in (*staged, *failed)]
            existing = set(conn.execute(select(r.c.id).where(r.c.id.in_(wanted))).scalars())
            missing = [
                NewRecording(item.id, item.channel, None)
                for item in (*staged, *failed)
                if item.id not in existing
            ]
            self._insert_recordings(conn, session, missing, now, source="live", process=False)
            mixed = next((item.id for item in missing if item.channel == "mixed"), None)
            if mixed and session.recording_id is None:
                conn.execute(
                    update(t.sessions)
                    .where(t.sessions.c.id == session_id)
                    .values(recording_id=mixed)
                )
            waiting = and_(r.c.status == "processing", r.c.deleted_at.is_(None))
            given: list[str] = []
            for item in staged:
                result = conn.execute(
                    update(r)
                    .where(r.c.id == item.id, waiting, r.c.staging_key.is_(None))
                    .values(staging_key=item.staging_key)
                )
                if result.rowcount == 1:
                    _enqueue(conn, "process_recording", item.id, now)
                    given.append(item.id)
                elif item.staging_key:
                    _schedule_file_removal(conn, item.staging_key, now)
            for item in failed:
                result = conn.execute(
                    update(r)
                    .where(r.c.id == item.id, waiting)
                    .values(status="failed", failure_reason=failure_reason)
                )
                if result.rowcount == 1 and emit_failed:
                    emit_failed(conn, _get_recording(conn, item.id))
            return given

    # -- recordings ------------------------------------------------------------------------

    def create_imported_recordings(
        self, session: Session, *, new_session: bool, channels: Sequence[NewRecording]
    ) -> list[str]:
        """Inserts (the session and) processing recordings and their jobs in one transaction."""
        with self.db.write() as conn:
            if new_session:
                mixed = next((c.id for c in channels if c.channel == "mixed"), None)
                values = {
                    **session.__dict__,
                    "end_reason": session.end_reason or "completed",
                    "recording_id": session.recording_id or mixed,
                }
                conn.execute(insert(t.sessions).values(**values))
            return self._insert_recordings(conn, session, channels, timeutil.now(), source="import")

    def _insert_recordings(
        self,
        conn: Connection,
        session: Session,
        channels: Sequence[NewRecording],
        now: float,
        *,
        source: str,
        process: bool = True,
    ) -> list[str]:
        """Processing recordings; ``process``: their audio is staged, so each gets its job."""
        if not channels:
            return []
        retention_days = conn.execute(
            select(t.organizations.c.retention_days).where(t.organizations.c.id == session.org_id)
        ).scalar_one()
        expires_at = now + retention_days * 86400
        for item in channels:
            conn.execute(
                insert(t.recordings).values(
                    id=item.id,
                    org_id=session.org_id,
                    livemode=session.livemode,
                    session_id=session.id,
                    channel=item.channel,
                    status="processing",
                    staging_key=item.staging_key,
                    created_at=now,
                    expires_at=expires_at,
                    source=source,
                )
            )
            if process:
                _enqueue(conn, "process_recording", item.id, now)
        return [item.id for item in channels]

    def get_recording(self, org_id: str, livemode: bool, recording_id: str) -> Recording | None:
        with self.db.read() as conn:
            row = (
                conn.execute(
                    select(t.recordings).where(
                        t.recordings.c.id == recording_id,
                        t.recordings.c.org_id == org_id,
                        t.recordings.c.livemode == livemode,
                        t.recordings.c.deleted_at.is_(None),
                    )
                )
                .mappings()
                .first()
            )
        return Recording.from_row(row) if row else None

    def get_recording_any(self, recording_id: str) -> Recording | None:
        """For background jobs, which act on behalf of no particular key."""
        with self.db.read() as conn:
            row = (
                conn.execute(select(t.recordings).where(t.recordings.c.id == recording_id))
                .mappings()
                .first()
            )
        return Recording.from_row(row) if row else None

    def list_recordings(
        self, org_id: str, livemode: bool, flt: RecordingFilter, page: Page
    ) -> tuple[list[Recording], bool]:
        r = t.recordings
        conds = [r.c.org_id == org_id, r.c.livemode == livemode, r.c.deleted_at.is_(None)]
        if flt.session_id:
            conds.append(r.c.session_id == flt.session_id)
        if flt.channel:
            conds.append(r.c.channel == flt.channel)
        if flt.status:
            conds.append(r.c.status == flt.status)
        if flt.created_gte is not None:
            conds.append(r.c.created_at >= flt.created_gte)
        if flt.created_lt is not None:
            conds.append(r.c.created_at < flt.created_lt)
        with self.db.read() as conn:
            rows, has_more = _paginate(conn, r, and_(*conds), page, org_id, livemode)
        return [Recording.from_row(row) for row in rows], has_more

    def mark_recording_ready(
        self,
        recording_id: str,
        *,
        storage_key: str,
        size: int,
        content_hash: str,
        duration: float,
        emit: Emit | None = None,
    ) -> bool:
        """Flips processing → ready; False when the recording was deleted meanwhile."""
        with self.db.write() as conn:
            result = conn.execute(
                update(t.recordings)
                .where(
                    t.recordings.c.id == recording_id,
                    t.recordings.c.status == "processing",
                    t.recordings.c.deleted_at.is_(None),
                )
                .values(
                    status="ready",
                    storage_key=storage_key,
                    size=size,
                    content_hash=content_hash,
                    duration=duration,
                    ready_at=timeutil.now(),
                )
            )
            if result.rowcount != 1:
                return False
            if emit:
                emit(conn, _get_recording(conn, recording_id))
            return True

    def mark_recording_failed(
        self, recording_id: str, reason: str, emit: Emit | None = None
    ) -> None:
        with self.db.write() as conn:
            result = conn.execute(
                update(t.recordings)
                .where(t.recordings.c.id == recording_id, t.recordings.c.status == "processing")
                .values(status="failed", failure_reason=reason)
            )
            if result.rowcount == 1 and emit:
                emit(conn, _get_recording(conn, recording_id))

    def clear_staging(self, recording_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(t.recordings)
                .where(t.recordings.c.id == recording_id)
                .values(staging_key=None)
            )

    def delete_recording(
        self,
        org_id: str,
        livemode: bool,
        recording_id: str,
        grace_seconds: float,
        emit: Emit | None = None,
    ) -> Recording | None:
        """Soft-deletes and schedules the file for removal after in-flight reads can finish."""
        with self.db.write() as conn:
            query = select(t.recordings).where(
                t.recordings.c.id == recording_id,
                t.recordings.c.org_id == org_id,
                t.recordings.c.livemode == livemode,
                t.recordings.c.deleted_at.is_(None),
            )
            # Locked (PostgreSQL): a concurrent 'ready' flip waits for us and then finds the
            # row deleted, or we wait for it and schedule the file it stored for removal.
            row = conn.execute(locking(query, conn, skip_locked=False)).mappings().first()
            if row is None:
                return None
            rec = Recording.from_row(row)
            now = timeutil.now()
            conn.execute(
                update(t.recordings)
                .where(t.recordings.c.id == recording_id)
                .values(deleted_at=now, storage_key=None, staging_key=None)
            )
            _schedule_recording_files(conn, rec, now + grace_seconds)
            if emit:
                emit(conn, rec)
            return rec

    def expire_due_recordings(
        self,
        before: float,
        grace_seconds: float,
        org_id: str | None = None,
        limit: int = EXPIRE_BATCH,
        emit: Emit | None = None,
    ) -> list[Recording]:
        """Marks recordings past expires_at as expired; their files go to the reaper."""
        r = t.recordings
        conds = [
            r.c.status.in_(("processing", "ready", "failed")),
            r.c.expires_at <= before,
            r.c.deleted_at.is_(None),
        ]
        if org_id:
            conds.append(r.c.org_id == org_id)
        with self.db.write() as conn:
            # Replicas purging at the same time take disjoint rows (each expires, and emits, once).
            query = locking(select(r).where(*conds).order_by(r.c.id).limit(limit), conn)
            expired = [Recording.from_row(row) for row in conn.execute(query).mappings()]
            now = timeutil.now()
            for rec in expired:
                conn.execute(
                    update(r)
                    .where(r.c.id == rec.id)
                    .values(status="expired", expired_at=now, storage_key=None, staging_key=None)
                )
                _schedule_recording_files(conn, rec, now + grace_seconds)
                conn.execute(
                    update(t.jobs)
                    .where(t.jobs.c.subject_id == rec.id, t.jobs.c.status == "queued")
                    .values(status="done", updated_at=now)
                )
                if emit:
                    emit(conn, _get_recording(conn, rec.id))
        return expired

    def count_recordings_by_status(self) -> dict[str, int]:
        r = t.recordings
        with self.db.read() as conn:
            rows = conn.execute(
                select(r.c.status, func.count())
                .where(r.c.deleted_at.is_(None))
                .group_by(r.c.status)
            )
            return {status: count for status, count in rows}

    # -- file reaper -----------------------------------------------------------------------

    def files_to_remove(self, now: float, limit: int = 500) -> list[str]:
        fr = t.file_reaper
        with self.db.read() as conn:
            rows = conn.execute(
                select(fr.c.storage_key).where(fr.c.remove_after <= now).limit(limit)
            )
            return [key for (key,) in rows]

    def forget_removed_files(self, keys: Sequence[str]) -> None:
        if keys:
            with self.db.write() as conn:
                conn.execute(delete(t.file_reaper).where(t.file_reaper.c.storage_key.in_(keys)))
                # A removed converted file is no longer in the conversion cache's quota.
                cc, pins = t.conversion_cache, t.conversion_pins
                conn.execute(delete(cc).where(cc.c.storage_key.in_(keys)))
                conn.execute(delete(pins).where(pins.c.storage_key.in_(keys)))

    # -- jobs ------------------------------------------------------------------------------

    def claim_job(self, kinds: Sequence[str], lease_seconds: float) -> Job | None:
        """Takes the oldest due job whose lease (if any) has run out, for lease_seconds.

        Safe across processes and replicas: SQLite runs this under its single write lock; on
        PostgreSQL the row is locked with SKIP LOCKED, so concurrent claimers take different
        jobs (or none) without waiting for each other.
        """
        now = timeutil.now()
        j = t.jobs
        with self.db.write() as conn:
            query = (
                select(j)
                .where(
                    j.c.kind.in_(kinds),
                    j.c.status == "queued",
                    j.c.run_after <= now,
                    or_(j.c.lease_until.is_(None), j.c.lease_until <= now),
                )
                .order_by(j.c.run_after, j.c.id)
                .limit(1)
            )
            row = conn.execute(locking(query, conn)).mappings().first()
            if row is None:
                return None
            conn.execute(
                update(j)
                .where(j.c.id == row["id"])
                .values(lease_until=now + lease_seconds, attempts=j.c.attempts + 1, updated_at=now)
            )
            claimed = conn.execute(select(j).where(j.c.id == row["id"])).mappings().one()
            return Job.from_row(claimed)

    def extend_job_lease(self, job_id: str, attempts: int, lease_seconds: float) -> bool:
        """Renews the lease of a job still running under the claim that counted ``attempts``;
        False when the claim was lost (its lease ran out and another worker took the job).

        A runner renews while a job runs longer than a lease, so that a slow job is not taken
        and run a second time by another replica while the first is still at it.
        """
        now = timeutil.now()
        j = t.jobs
        with self.db.write() as conn:
            result = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "queued", j.c.attempts == attempts)
                .values(lease_until=now + lease_seconds, updated_at=now)
            )
            return result.rowcount == 1

    def finish_job(self, job_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(status="done", lease_until=None, updated_at=timeutil.now())
            )

    def retry_job(self, job_id: str, error: str, delay: float, give_up: bool) -> None:
        now = timeutil.now()
        with self.db.write() as conn:
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job_id)
                .values(
                    status="failed" if give_up else "queued",
                    lease_until=None,
                    run_after=now + delay,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )

    def count_waiting_jobs(self) -> dict[str, int]:
        j = t.jobs
        with self.db.read() as conn:
            rows = conn.execute(
                select(j.c.kind, func.count()).where(j.c.status == "queued").group_by(j.c.kind)
            )
            return {kind: count for kind, count in rows}

    # -- idempotency -----------------------------------------------------------------------

    def begin_idempotent(
        self, org_id: str, livemode: bool, key: str, request_hash: str, now: float, ttl: float
    ) -> dict[str, Any] | None:
        """Reserves ``key``; returns the stored row instead when it already exists (and is live)."""
        ik = t.idempotency_keys
        scope = and_(ik.c.org_id == org_id, ik.c.livemode == livemode, ik.c.key == key)
        with self.db.write() as conn:
            # Locked (PostgreSQL): two replicas taking over the same stale row must not both
            # delete "whatever is there now" -- the second would delete the first's new row.
            query = locking(select(ik).where(scope), conn, skip_locked=False)
            row = conn.execute(query).mappings().first()
            # A 'running' row that old belongs to a process that died mid-request: take it over.
            abandoned = (
                row is not None
                and row["status"] == "running"
                and (row["created_at"] < now - ABANDONED_AFTER_SECONDS)
            )
            if row is not None and row["created_at"] > now - ttl and not abandoned:
                return dict(row)
            if row is not None:
                conn.execute(delete(ik).where(scope))
            try:
                # A savepoint, so that losing the race below leaves the transaction usable.
                with conn.begin_nested():
                    conn.execute(
                        insert(ik).values(
                            org_id=org_id,
                            livemode=livemode,
                            key=key,
                            request_hash=request_hash,
                            status="running",
                            created_at=now,
                        )
                    )
            except IntegrityError:
                # PostgreSQL: another replica reserved the key between our read and our insert
                # (the unique constraint made us wait for its commit). Its row is the answer;
                # if that request already failed and removed it, "still running" (409, retry
                # after 1 s) is still true enough for the caller.
                theirs = conn.execute(select(ik).where(scope)).mappings().first()
                return (
                    dict(theirs) if theirs else {"request_hash": request_hash, "status": "running"}
                )
            return None

    def finish_idempotent(
        self, org_id: str, livemode: bool, key: str, status: int, body: bytes | None
    ) -> None:
        ik = t.idempotency_keys
        scope = and_(ik.c.org_id == org_id, ik.c.livemode == livemode, ik.c.key == key)
        with self.db.write() as conn:
            if body is None:  # the request failed in a way that must not be replayed
                conn.execute(delete(ik).where(scope))
            else:
                conn.execute(
                    update(ik)
                    .where(scope)
                    .values(status="done", response_status=status, response_body=body.decode())
                )


def _get_session(
    conn: Connection, org_id: str, livemode: bool, session_id: str, *, lock: bool = False
) -> Session | None:
    query = select(t.sessions).where(
        t.sessions.c.id == session_id,
        t.sessions.c.org_id == org_id,
        t.sessions.c.livemode == livemode,
    )
    if lock:
        query = locking(query, conn, skip_locked=False)
    row = conn.execute(query).mappings().first()
    return Session.from_row(row) if row else None


def insert_event(
    conn: Connection, org_id: str, livemode: bool, event_type: str, data: dict[str, Any]
) -> str:
    """Records an event and a pending delivery for every endpoint subscribed to it, in the
    caller's transaction (the outbox: no change without its event, no event without its change)."""
    now = timeutil.now()
    event_id = ids.new_id("evt")
    payload = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "v1",
        "created_at": timeutil.iso(now),
        "livemode": livemode,
        "data": data,
    }
    conn.execute(
        insert(t.events).values(
            id=event_id,
            org_id=org_id,
            livemode=livemode,
            type=event_type,
            payload=json.dumps(payload, separators=(",", ":")),
            created_at=now,
        )
    )
    endpoints = conn.execute(
        select(t.webhook_endpoints.c.id, t.webhook_endpoints.c.events).where(
            t.webhook_endpoints.c.org_id == org_id,
            t.webhook_endpoints.c.livemode == livemode,
            t.webhook_endpoints.c.deleted_at.is_(None),
        )
    )
    for endpoint_id, subscribed in endpoints:
        if event_type in subscribed.split() or "*" in subscribed.split():
            conn.execute(
                insert(t.webhook_deliveries).values(
                    id=ids.new_id("wh_del"),
                    event_id=event_id,
                    endpoint_id=endpoint_id,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    return event_id


def _get_recording(conn: Connection, recording_id: str) -> Recording:
    row = conn.execute(select(t.recordings).where(t.recordings.c.id == recording_id)).mappings()
    return Recording.from_row(row.one())


def _get_session_any(conn: Connection, session_id: str, *, lock: bool = False) -> Session:
    query = select(t.sessions).where(t.sessions.c.id == session_id)
    if lock:
        query = locking(query, conn, skip_locked=False)
    return Session.from_row(conn.execute(query).mappings().one())


def _enqueue(conn: Connection, kind: str, subject_id: str, now: float) -> None:
    conn.execute(
        insert(t.jobs).values(
            id=ids.new_id("job"),
            kind=kind,
            subject_id=subject_id,
            status="queued",
            attempts=0,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
    )


def _schedule_recording_files(conn: Connection, rec: Recording, when: float) -> None:
    """Every object a recording may own: its MP3, its staged input, its cached conversions;
    and its waveform peaks, which are derived from the audio and go with it."""
    keys = [rec.storage_key, rec.staging_key, *converted_keys(rec.id)]
    for key in filter(None, keys):
        _schedule_file_removal(conn, key, when)
    conn.execute(delete(t.recording_peaks).where(t.recording_peaks.c.recording_id == rec.id))


def _schedule_file_removal(conn: Connection, key: str, when: float) -> None:
    fr = t.file_reaper
    exists = conn.execute(select(fr.c.storage_key).where(fr.c.storage_key == key)).first()
    if exists is None:
        conn.execute(insert(fr).values(storage_key=key, remove_after=when))


def _paginate(
    conn: Connection, table: Table, where: Any, page: Page, org_id: str, livemode: bool
) -> tuple[list[Any], bool]:
    """Newest-first cursor pagination over ULID ids (which sort by creation time)."""
    idc = table.c.id
    for param, cursor in (
        ("starting_after", page.starting_after),
        ("ending_before", page.ending_before),
    ):
        if cursor is None:
            continue
        found = conn.execute(
            select(idc).where(idc == cursor, table.c.org_id == org_id, table.c.livemode == livemode)
        ).first()
        if found is None:
            raise UnknownCursor(param, cursor)
    if page.ending_before is not None:
        query = select(table).where(where, idc > page.ending_before).order_by(idc.asc())
        rows = list(conn.execute(query.limit(page.limit + 1)).mappings())
        has_more = len(rows) > page.limit
        return list(reversed(rows[: page.limit])), has_more
    query = select(table).where(where)
    if page.starting_after is not None:
        query = query.where(idc < page.starting_after)
    rows = list(conn.execute(query.order_by(idc.desc()).limit(page.limit + 1)).mappings())
    return rows[: page.limit], len(rows) > page.limit


def _session_text_matches(text: str) -> Any:
    """Sessions whose metadata, carrier ids or phone number contain ``text``, or whose id it is.

    Metadata is stored as JSON with non-ASCII escaped (metadata_json), so the text is looked for
    in that same spelling; LIKE's wildcards in it are matched literally."""

    def contains(spelled: str) -> str:
        escaped = spelled.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        return f"%{escaped}%"

    s = t.sessions
    as_json = json.dumps(text)[1:-1]
    return or_(
        s.c.metadata.ilike(contains(as_json), escape="!"),
        s.c.carrier_ids.ilike(contains(text), escape="!"),
        s.c.phone_number.ilike(contains(text), escape="!"),
        s.c.id == text,
    )


def metadata_json(metadata: dict[str, Any] | None) -> str | None:
    return None if metadata is None else json.dumps(metadata, separators=(",", ":"))
