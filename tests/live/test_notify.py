"""Ending a session held by another replica: PostgreSQL NOTIFY reaches every process's streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from kallrec.config import Settings
from kallrec.live.notify import libpq_url, listen_for_ended_sessions
from kallrec.runtime import Runtime
from tests.db.factories import new_session
from tests.db.pg import fresh_database, require_postgres


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[Runtime, Runtime]]:
    require_postgres()
    with fresh_database() as url:
        replicas = [
            Runtime(Settings.from_env({}, data_dir=tmp_path / name, database_url=url))
            for name in ("a", "b")
        ]
        try:
            yield replicas[0], replicas[1]
        finally:
            for rt in replicas:
                rt.close()


async def test_an_end_committed_on_one_replica_closes_the_stream_held_by_another(
    two_replicas: tuple[Runtime, Runtime],
) -> None:
    holder, other = two_replicas
    org, _ = other.repo.ensure_org("acme", 30)
    session = new_session(org.id)
    other.repo.insert_session(session)
    _, ended = holder.live.connect(session.id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listen_for_ended_sessions, holder)
        await anyio.sleep(0.5)  # listening
        assert not ended.is_set()
        other.repo.end_session(org.id, False, session.id)  # NOTIFY on commit
        with anyio.fail_after(3):  # well before the streams' own 5 s status check
            await ended.wait()
        tg.cancel_scope.cancel()


def test_the_listener_connects_with_the_url_libpq_understands() -> None:
    url = "postgresql+psycopg://kallrec:s3cret@db.internal:5432/kallrec?sslmode=require"
    assert libpq_url(url) == "postgresql://kallrec:s3cret@db.internal:5432/kallrec?sslmode=require"
