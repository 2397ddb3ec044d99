"""Replicas racing on one database: each thread here has its own engine and connections, as a
separate process would, and they start together behind a barrier.

On PostgreSQL these exercise the row locks (``locking``: FOR UPDATE [SKIP LOCKED]) and the
unique-constraint race in ``begin_idempotent``; on SQLite the same contract holds through its
single write lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from kallrec import ids, timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database
from kallrec.db.repository import NewRecording, Repository, insert_event
from tests.db.factories import EmitCounter, count_rows, import_recordings, new_session

T = TypeVar("T")
WORKERS = 8


@pytest.fixture
def replicas(db: Database) -> Iterator[list[Repository]]:
    """WORKERS repositories on their own engines, all on the test's database."""
    dbs = [Database(db.url, pool_size=2) for _ in range(WORKERS)]
    try:
        yield [Repository(d) for d in dbs]
    finally:
        for d in dbs:
            d.close()


def race(repos: list[Repository], work: Callable[[Repository], T]) -> list[T]:
    """Runs ``work`` once per repository, all released at the same moment."""
    barrier = threading.Barrier(len(repos))
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(repo: Repository) -> None:
        try:
            barrier.wait()
            result = work(repo)
        except BaseException as exc:
            errors.append(exc)
        else:
            with lock:
                results.append(result)

    threads = [threading.Thread(target=run, args=(r,)) for r in repos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_concurrent_claimers_never_get_the_same_job(
    repo: Repository, replicas: list[Repository]
) -> None:
    org, _ = repo.ensure_org("acme", 30)
    total = 120
    _, rec_ids = import_recordings(repo, org.id, total)

    def drain(r: Repository) -> list[str]:
        mine = []
        while (job := r.claim_job(["process_recording"], 60)) is not None:
            mine.append(job.subject_id)
        return mine

    per_worker = race(replicas, drain)
    claimed = [subject for mine in per_worker for subject in mine]
    duplicates = [s for s, n in Counter(claimed).items() if n > 1]
    assert duplicates == []
    assert sorted(claimed) == sorted(rec_ids)
    if repo.db.dialect == "postgresql":
        # They really claimed side by side. (SQLite's busy handler is not fair: one writer can
        # keep the lock for the whole run, which is correct, just not concurrent.)
        assert sum(1 for mine in per_worker if mine) > 1


def test_a_session_ended_by_several_replicas_at_once_ends_once(
    repo: Repository, replicas: list[Repository], db: Database
) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)
    emit = EmitCounter()
    ended = race(replicas, lambda r: r.end_session(org.id, False, session.id, emit=emit))
    assert len(emit.calls) == 1
    assert {s.ended_at for s in ended if s is not None} == {emit.calls[0].ended_at}
    assert {s.recording_id for s in ended if s is not None} == {emit.calls[0].recording_id}
    assert count_rows(db, t.jobs, t.jobs.c.kind == "finalize_session") == 1
    assert count_rows(db, t.recordings) == 1  # its recording, made once


def test_a_session_is_finalized_once(repo: Repository, replicas: list[Repository]) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)

    def finalize(r: Repository) -> list[str] | None:
        channel = NewRecording(ids.new_id("rec"), "mixed", "staging/x.pcm")
        return r.finalize_session(session.id, [channel])

    results = race(replicas, finalize)
    assert sum(1 for created in results if created) == 1
    assert repo.count_recordings_by_status() == {"processing": 1}


def test_one_idempotency_key_is_reserved_once(replicas: list[Repository]) -> None:
    now = timeutil.now()
    results = race(replicas, lambda r: r.begin_idempotent("org_a", False, "key-1", "h", now, 3600))
    assert results.count(None) == 1
    assert all(row["status"] == "running" for row in results if row is not None)


def test_taking_over_an_abandoned_idempotency_key_happens_once(
    repo: Repository, replicas: list[Repository]
) -> None:
    long_ago = timeutil.now() - 3600
    assert repo.begin_idempotent("org_a", False, "key-1", "h", long_ago, 86400) is None
    now = timeutil.now()
    results = race(replicas, lambda r: r.begin_idempotent("org_a", False, "key-1", "h", now, 86400))
    assert results.count(None) == 1


def test_replicas_purging_together_expire_each_recording_once(
    repo: Repository, replicas: list[Repository], db: Database
) -> None:
    org, _ = repo.ensure_org("acme", 1)
    _, rec_ids = import_recordings(repo, org.id, 60)
    emit = EmitCounter()
    later = timeutil.now() + 2 * 86400

    def purge(r: Repository) -> list[str]:
        expired = []
        while batch := r.expire_due_recordings(later, 0, limit=5, emit=emit):
            expired += [rec.id for rec in batch]
        return expired

    expired = [rec_id for part in race(replicas, purge) for rec_id in part]
    assert sorted(expired) == sorted(rec_ids)
    assert len(emit.calls) == len(rec_ids)
    staged = count_rows(db, t.file_reaper, t.file_reaper.c.storage_key.like("staging/%"))
    assert staged == len(rec_ids)  # each staging file, once


def test_delete_racing_the_ready_flip_never_orphans_the_file(
    repo: Repository, replicas: list[Repository], db: Database
) -> None:
    """Whichever wins, a file stored by the flip is either kept (ready) or scheduled for removal
    with the delete: never left behind with no row pointing at it."""
    org, _ = repo.ensure_org("acme", 30)
    rounds = 15
    _, rec_ids = import_recordings(repo, org.id, rounds)
    deleter, flipper = replicas[0], replicas[1]
    for rec_id in rec_ids:
        key = f"recordings/{rec_id}.mp3"

        def act(r: Repository, rec_id: str = rec_id, key: str = key) -> object:
            if r is deleter:
                return r.delete_recording(org.id, False, rec_id, grace_seconds=60)
            return r.mark_recording_ready(
                rec_id, storage_key=key, size=1, content_hash="h", duration=1.0
            )

        results = race([deleter, flipper], act)
        flipped = True in results
        scheduled = count_rows(db, t.file_reaper, t.file_reaper.c.storage_key == key)
        # Flipped then deleted: the delete scheduled the file. Deleted first: no flip, and the
        # job removes its own object (process_recording: "if not flipped").
        assert scheduled == (1 if flipped else 0), (rec_id, results)


def test_concurrent_senders_never_claim_the_same_webhook_delivery(
    repo: Repository, db: Database
) -> None:
    from kallrec.db.webhook_repository import WebhookEndpoint, WebhookRepository

    org, _ = repo.ensure_org("acme", 30)
    hooks = WebhookRepository(db)
    for n in range(10):
        hooks.insert_endpoint(
            WebhookEndpoint(
                ids.new_id("wh"),
                org.id,
                False,
                f"http://127.0.0.1:9/{n}",
                "*",
                None,
                "whsec_x",
                timeutil.now(),
                None,
            )
        )
    with db.write() as conn:
        for n in range(20):
            insert_event(conn, org.id, False, "session.created", {"n": n})
    dbs = [Database(db.url, pool_size=2) for _ in range(WORKERS)]
    try:

        def drain(d: Database) -> list[str]:
            sender, mine = WebhookRepository(d), []
            while claimed := sender.claim_deliveries(5, 60, 8, per_endpoint=100):
                mine += [c.id for c in claimed]
            return mine

        barrier = threading.Barrier(WORKERS)
        results: list[list[str]] = []

        def run(d: Database) -> None:
            barrier.wait()
            results.append(drain(d))

        threads = [threading.Thread(target=run, args=(d,)) for d in dbs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for d in dbs:
            d.close()
    claimed = [c for mine in results for c in mine]
    assert len(claimed) == 200 and len(set(claimed)) == 200
