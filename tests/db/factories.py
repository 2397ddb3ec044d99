"""Rows for repository tests, built the way the product builds them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select

from kallrec import ids, keys, timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database
from kallrec.db.models import ApiKey, Session
from kallrec.db.repository import NewRecording, Repository


def new_key(org_id: str, *, livemode: bool = False, scopes: str = "recordings:read") -> ApiKey:
    secret = keys.generate(livemode)
    return ApiKey(
        id=ids.new_id("key"),
        org_id=org_id,
        livemode=livemode,
        name="test",
        prefix=keys.display_prefix(secret),
        hash=keys.hash_key(secret),
        scopes=scopes,
        created_at=timeutil.now(),
        last_used_at=None,
        revoked_at=None,
    )


def new_session(org_id: str, *, livemode: bool = False, **changes: Any) -> Session:
    now = timeutil.now()
    session = Session(
        id=ids.new_id("sess"),
        org_id=org_id,
        livemode=livemode,
        mode="ai_agent",
        source_language="en",
        target_language=None,
        provider=None,
        status="created",
        recording_enabled=True,
        recording_channels="mixed",
        metadata='{"crm":"42"}',
        stream_token=ids.new_id("kst"),
        stream_token_expires_at=now + 300,
        created_at=now,
        started_at=None,
        ended_at=None,
    )
    return replace(session, **changes)


def import_recordings(
    repo: Repository, org_id: str, count: int = 1, *, livemode: bool = False
) -> tuple[Session, list[str]]:
    session = new_session(org_id, livemode=livemode, status="ended")
    channels = []
    for _ in range(count):
        rec_id = ids.new_id("rec")
        channels.append(NewRecording(rec_id, "mixed", f"staging/{rec_id}.pcm"))
    return session, repo.create_imported_recordings(session, new_session=True, channels=channels)


def ready(repo: Repository, rec_id: str, *, size: int = 1234) -> None:
    assert repo.mark_recording_ready(
        rec_id, storage_key=f"recordings/{rec_id}.mp3", size=size, content_hash="ab", duration=2.5
    )


class EmitCounter:
    """An Emit that counts its calls and writes nothing (the transaction must stay valid)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, conn: Connection, row: Any) -> None:
        conn.execute(select(func.count()).select_from(t.events))  # it runs inside the txn
        self.calls.append(row)


def count_rows(db: Database, table: Any, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())
