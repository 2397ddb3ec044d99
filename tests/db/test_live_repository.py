"""The live calls' rows (db/live_repository.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from kallrec.db.engine import Database
from kallrec.db.live_repository import LiveRepository, SegmentRow
from kallrec.db.repository import Repository
from tests.db.factories import new_session


def test_only_one_of_many_replicas_claims_the_first_start(db: Database) -> None:
    live = LiveRepository(db)
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        wins.append(live.claim_first_start("demo"))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(wins) == [False, False, False, True]
    assert not live.claim_first_start("demo")  # ever


def test_segments_of_a_finalized_session_are_refused(db: Database) -> None:
    repo, live = Repository(db), LiveRepository(db)
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)

    def row(seg_id: str) -> SegmentRow:
        return SegmentRow(seg_id, session.id, "wrt_1", f"live/{session.id}/{seg_id}.seg", 0, 8, 16)

    assert live.add_segments([row("seg_1")]) == set()
    repo.end_session(org.id, False, session.id)
    repo.finalize_session(session.id, [])
    assert live.add_segments([row("seg_2")]) == {"seg_2"}
    assert [s.id for s in live.segments(session.id)] == ["seg_1"]
    # An unknown session's too.
    assert live.add_segments([SegmentRow("seg_3", "sess_none", "w", "k", 0, 8, 16)]) == {"seg_3"}


def test_writers_are_active_until_removed_or_stale(db: Database) -> None:
    live = LiveRepository(db)
    live.register_writer("sess_1", "wrt_a")
    live.heartbeat([("sess_1", "wrt_a"), ("sess_1", "wrt_b")])  # adds the missing one
    assert sorted(live.active_writers("sess_1", 0)) == ["wrt_a", "wrt_b"]
    live.remove_writer("sess_1", "wrt_a")
    assert live.active_writers("sess_1", 0) == ["wrt_b"]
    assert live.active_writers("sess_1", 1e12) == []  # stale: seen before that
