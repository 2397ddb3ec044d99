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

    def row(seg_id: str, session_id: str = session.id) -> SegmentRow:
        return SegmentRow(seg_id, session_id, "wrt_1", "ignored", 0, 0, 8, 16)

    assert live.add_segments("live/lsp_1.seg", [row("seg_1")]) == set()
    repo.end_session(org.id, False, session.id)
    repo.finalize_session(session.id, [])
    # Nobody's object: to the reaper at once.
    assert live.add_segments("live/lsp_2.seg", [row("seg_2")]) == {"seg_2"}
    assert [(s.id, s.storage_key) for s in live.segments(session.id)] == [
        ("seg_1", "live/lsp_1.seg")
    ]
    assert repo.files_to_remove(float("inf")) == ["live/lsp_2.seg"]
    # An unknown session's too.
    assert live.add_segments("live/lsp_3.seg", [row("seg_3", "sess_none")]) == {"seg_3"}


def test_a_packed_object_goes_with_the_last_of_its_sessions(db: Database) -> None:
    repo, live = Repository(db), LiveRepository(db)
    org, _ = repo.ensure_org("acme", 30)
    first, second = new_session(org.id), new_session(org.id)
    repo.insert_session(first)
    repo.insert_session(second)
    pack = [
        SegmentRow("seg_1", first.id, "w1", "", 0, 0, 8, 16),
        SegmentRow("seg_2", second.id, "w2", "", 16, 0, 8, 16),
    ]
    assert live.add_segments("live/lsp_1.seg", pack) == set()
    live.add_segments("live/lsp_2.seg", [SegmentRow("seg_3", first.id, "w1", "", 0, 8, 16, 16)])

    live.forget_segments(first.id)
    assert repo.files_to_remove(float("inf")) == ["live/lsp_2.seg"]  # only first's
    assert [s.byte_offset for s in live.segments(second.id)] == [16]
    live.forget_segments(second.id)
    assert sorted(repo.files_to_remove(float("inf"))) == ["live/lsp_1.seg", "live/lsp_2.seg"]


def test_writers_are_active_until_removed_or_stale(db: Database) -> None:
    live = LiveRepository(db)
    live.register_writer("sess_1", "wrt_a")
    live.heartbeat([("sess_1", "wrt_a"), ("sess_1", "wrt_b")])  # adds the missing one
    assert sorted(live.active_writers("sess_1", 0)) == ["wrt_a", "wrt_b"]
    live.remove_writer("sess_1", "wrt_a")
    assert live.active_writers("sess_1", 0) == ["wrt_b"]
    assert live.active_writers("sess_1", 1e12) == []  # stale: seen before that
