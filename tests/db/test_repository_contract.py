"""The repository contract: every method behaves the same on SQLite and on PostgreSQL.

Values come back with the types the models promise (bool, float, int: no Decimal, no 0/1),
conditional updates report whether they changed something, and lookups never cross an
organization or a mode.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from kallrec import ids, timeutil
from kallrec.db import schema as t
from kallrec.db.engine import Database
from kallrec.db.repository import (
    NewRecording,
    Page,
    RecordingFilter,
    Repository,
    SessionFilter,
    UnknownCursor,
    insert_event,
    metadata_json,
)
from tests.db.factories import (
    EmitCounter,
    count_rows,
    import_recordings,
    new_key,
    new_session,
    ready,
)

# -- organizations ---------------------------------------------------------------------------


def test_organizations(repo: Repository) -> None:
    org, created = repo.ensure_org("acme", 30)
    again, created_again = repo.ensure_org("acme", 7)
    assert created and not created_again and again == org
    assert repo.get_org(org.id) == org == repo.get_org_by_name("acme")
    assert repo.get_org("org_missing") is None and repo.get_org_by_name("nope") is None
    repo.ensure_org("beta", 5)
    assert [o.name for o in repo.list_orgs()] == ["acme", "beta"]
    assert type(org.created_at) is float and type(org.retention_days) is int


def test_set_retention_moves_expiry_of_recordings_still_holding_audio(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, (kept, gone) = import_recordings(repo, org.id, 2)
    repo.expire_due_recordings(before=time.time() + 10 * 86400 * 365, grace_seconds=0, limit=1)
    repo.set_retention(org.id, 2)
    assert repo.get_org(org.id).retention_days == 2  # type: ignore[union-attr]
    statuses = {r: repo.get_recording_any(r).status for r in (kept, gone)}  # type: ignore[union-attr]
    still = next(r for r, s in statuses.items() if s == "processing")
    rec = repo.get_recording_any(still)
    assert rec is not None and rec.expires_at == pytest.approx(rec.created_at + 2 * 86400)


def test_an_organization_records_by_default_only_when_set(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    assert org.record_by_default is False
    repo.set_record_by_default(org.id, True)
    assert repo.get_org(org.id).record_by_default is True  # type: ignore[union-attr]
    repo.set_record_by_default(org.id, False)
    assert repo.get_org_by_name("acme").record_by_default is False  # type: ignore[union-attr]


# -- keys ------------------------------------------------------------------------------------


def test_keys(repo: Repository) -> None:
    acme, _ = repo.ensure_org("acme", 30)
    beta, _ = repo.ensure_org("beta", 30)
    live = new_key(acme.id, livemode=True)
    test = new_key(beta.id)
    repo.insert_key(live)
    repo.insert_key(test)
    found = repo.find_key_by_hash(live.hash)
    assert found == live and found.livemode is True
    assert repo.find_key_by_hash("0" * 64) is None
    assert [(k.id, org) for k, org in repo.list_keys()] == [(live.id, "acme"), (test.id, "beta")]
    assert [k.id for k, _ in repo.list_keys(beta.id)] == [test.id]

    revoked = repo.revoke_key(key_id=live.id)
    assert revoked is not None and revoked.revoked_at is not None
    # Revoking again keeps the first revocation time.
    assert repo.revoke_key(key_hash=live.hash).revoked_at == revoked.revoked_at  # type: ignore[union-attr]
    assert repo.revoke_key(key_id="key_missing") is None

    repo.touch_keys({test.id: 1234.5, live.id: 99.25})
    repo.touch_keys({})
    assert repo.find_key_by_hash(test.hash).last_used_at == 1234.5  # type: ignore[union-attr]


# -- sessions --------------------------------------------------------------------------------


def test_sessions_are_scoped_to_organization_and_mode(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    other, _ = repo.ensure_org("beta", 30)
    emit = EmitCounter()
    session = new_session(org.id)
    repo.insert_session(session, emit)
    assert len(emit.calls) == 1
    assert repo.get_session(org.id, False, session.id) == session
    assert repo.get_session(org.id, True, session.id) is None
    assert repo.get_session(other.id, False, session.id) is None
    assert repo.get_session_any(session.id) == session
    assert repo.get_session_any("sess_missing") is None
    got = repo.get_session(org.id, False, session.id)
    assert got is not None and got.recording_enabled is True and got.livemode is False
    assert got.metadata_dict == {"crm": "42"}


def test_stream_tokens(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)
    assert repo.get_session_by_token(session.stream_token) == session  # type: ignore[arg-type]
    replaced = repo.replace_stream_token(session.id, "kst_new", 42.5)
    assert (replaced.stream_token, replaced.stream_token_expires_at) == ("kst_new", 42.5)
    assert repo.get_session_by_token(session.stream_token) is None  # type: ignore[arg-type]
    repo.end_session(org.id, False, session.id)
    # An ended session gets no token.
    assert repo.replace_stream_token(session.id, "kst_later", 1.0).stream_token is None


def test_session_lifecycle(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)
    started = EmitCounter()
    first = repo.start_session(session.id, emit=started)
    second = repo.start_session(session.id, emit=started)
    assert first.status == "active" and first.started_at is not None
    assert second == first and len(started.calls) == 1  # only the first start emits

    repo.touch_session_audio(session.id, first.started_at + 5)  # type: ignore[operator]
    assert repo.get_session_any(session.id).last_audio_at == first.started_at + 5  # type: ignore[operator, union-attr]

    ended_events = EmitCounter()
    ended = repo.end_session(org.id, False, session.id, "customer_hangup", emit=ended_events)
    assert ended is not None and ended.status == "ended" and ended.stream_token is None
    assert ended.end_reason == "customer_hangup"
    # idempotent, the first reason kept
    assert repo.end_session(org.id, False, session.id, "error", emit=ended_events) == ended
    assert len(ended_events.calls) == 1
    assert ended_events.calls[0] == ended  # the event sees the session as ended
    assert repo.end_session(org.id, True, session.id) is None  # the other mode: not found
    assert repo.count_waiting_jobs() == {"finalize_session": 1}
    # Its recording exists from the end on, processing and waiting for the tracks.
    (made,) = repo.live_recordings(session.id)
    assert (made.id, made.channel, made.status, made.source) == (
        ended.recording_id,
        "mixed",
        "processing",
        "live",
    )
    assert made.staging_key is None
    # Ending changes nothing the stream may still stamp.
    repo.touch_session_audio(session.id, 1.0)
    assert repo.get_session_any(session.id).last_audio_at != 1.0  # type: ignore[union-attr]


def test_ending_a_session_without_recording_queues_nothing(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id, recording_enabled=False)
    repo.insert_session(session)
    repo.end_session(org.id, False, session.id)
    assert repo.count_waiting_jobs() == {}


def test_idle_sessions(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    now = timeutil.now()
    quiet = new_session(org.id, created_at=now - 100)
    talking = new_session(org.id, created_at=now - 100)
    ended = new_session(org.id, created_at=now - 100, status="ended")
    for s in (quiet, talking, ended):
        repo.insert_session(s)
    repo.start_session(talking.id)  # last_audio_at = now
    idle = repo.idle_sessions(now - 50)
    assert [s.id for s in idle] == [quiet.id]
    assert repo.idle_sessions(now - 50, limit=0) == []


def test_finalize_session_gives_the_recordings_made_at_the_end_their_audio_once(
    repo: Repository,
) -> None:
    org, _ = repo.ensure_org("acme", 7)
    session = new_session(org.id, recording_channels="dual")
    repo.insert_session(session)
    ended = repo.end_session(org.id, False, session.id)
    made = repo.live_recordings(session.id)
    assert ended is not None and [r.channel for r in made] == ["mixed", "agent", "customer"]
    assert made[0].id == ended.recording_id
    assert repo.count_waiting_jobs() == {"finalize_session": 1}  # nothing to encode yet
    staged = [NewRecording(r.id, r.channel, f"staging/{r.channel}.pcm") for r in made]
    assert repo.finalize_session(session.id, staged) == [r.id for r in made]
    assert repo.finalize_session(session.id, staged) is None
    assert repo.finalize_session(session.id, []) is None
    rec = repo.get_recording(org.id, False, made[1].id)
    assert rec is not None and (rec.channel, rec.status) == ("agent", "processing")
    assert rec.staging_key == "staging/agent.pcm"
    assert rec.expires_at == pytest.approx(rec.created_at + 7 * 86400)
    assert repo.count_waiting_jobs() == {"finalize_session": 1, "process_recording": 3}
    assert len(repo.live_recordings(session.id)) == 3  # none made twice


def test_finalize_session_without_audio_fails_the_recordings_with_their_events(
    repo: Repository,
) -> None:
    org, _ = repo.ensure_org("acme", 7)
    session = new_session(org.id)
    repo.insert_session(session)
    repo.end_session(org.id, False, session.id)
    (made,) = repo.live_recordings(session.id)
    failed = EmitCounter()
    target = NewRecording(made.id, made.channel, None)
    assert repo.finalize_session(session.id, [], failed=[target], emit_failed=failed) == []
    rec = repo.get_recording_any(made.id)
    assert rec is not None and (rec.status, rec.failure_reason) == ("failed", "no_audio")
    assert [r.id for r in failed.calls] == [made.id]
    assert repo.count_waiting_jobs() == {"finalize_session": 1}


def test_finalize_session_sends_the_staging_of_a_deleted_recording_to_the_reaper(
    repo: Repository, db: Database
) -> None:
    org, _ = repo.ensure_org("acme", 7)
    session = new_session(org.id)
    repo.insert_session(session)
    repo.end_session(org.id, False, session.id)
    (made,) = repo.live_recordings(session.id)
    repo.delete_recording(org.id, False, made.id, grace_seconds=0)
    staged = NewRecording(made.id, "mixed", "staging/late.pcm")
    assert repo.finalize_session(session.id, [staged]) == []
    assert "staging/late.pcm" in repo.files_to_remove(time.time() + 1)
    assert repo.count_waiting_jobs() == {"finalize_session": 1}


def test_finalize_session_makes_the_recordings_a_session_ended_before_0005_lacks(
    repo: Repository,
) -> None:
    org, _ = repo.ensure_org("acme", 7)
    session = new_session(org.id, status="ended")  # ended with no recordings made
    repo.insert_session(session)
    new = NewRecording(ids.new_id("rec"), "mixed", "staging/old.pcm")
    assert repo.finalize_session(session.id, [new]) == [new.id]
    again = repo.get_session_any(session.id)
    assert again is not None and again.recording_id == new.id
    assert [r.id for r in repo.live_recordings(session.id)] == [new.id]


def test_list_sessions_filters_and_pages(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    other, _ = repo.ensure_org("beta", 30)
    now = timeutil.now()
    made = [new_session(org.id, created_at=now + i) for i in range(4)]
    for session in (*made, new_session(other.id), new_session(org.id, livemode=True)):
        repo.insert_session(session)
    repo.end_session(org.id, False, made[1].id)
    everything, more = repo.list_sessions(org.id, False, SessionFilter(), Page(limit=10))
    assert [s.id for s in everything] == [s.id for s in reversed(made)] and not more
    ended, _ = repo.list_sessions(org.id, False, SessionFilter(status="ended"), Page())
    assert [s.id for s in ended] == [made[1].id]
    window = SessionFilter(created_gte=now + 1, created_lt=now + 3)
    assert [s.id for s in repo.list_sessions(org.id, False, window, Page())[0]] == [
        made[2].id,
        made[1].id,
    ]
    first, more = repo.list_sessions(org.id, False, SessionFilter(), Page(limit=1))
    assert [s.id for s in first] == [made[3].id] and more
    with pytest.raises(UnknownCursor):
        repo.list_sessions(other.id, False, SessionFilter(), Page(starting_after=made[0].id))


def test_recordings_by_id_leaves_out_deleted_and_unknown_ones(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, (kept, gone) = import_recordings(repo, org.id, 2)
    repo.delete_recording(org.id, False, gone, grace_seconds=0)
    found = repo.recordings_by_id([kept, gone, "rec_missing", kept])
    assert list(found) == [kept] and found[kept].id == kept
    assert repo.recordings_by_id([]) == {}


# -- recordings ------------------------------------------------------------------------------


def test_imported_recordings_and_their_lookups(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    other, _ = repo.ensure_org("beta", 30)
    session, (rec_id,) = import_recordings(repo, org.id)
    assert repo.get_session_any(session.id) is not None
    rec = repo.get_recording(org.id, False, rec_id)
    assert rec is not None and rec.status == "processing" and rec.size is None
    assert rec.staging_key == f"staging/{rec_id}.pcm" and rec.livemode is False
    assert repo.get_recording(other.id, False, rec_id) is None
    assert repo.get_recording(org.id, True, rec_id) is None
    assert repo.get_recording_any(rec_id) == rec
    assert repo.get_recording_any("rec_missing") is None
    # An existing session gets more recordings without being inserted again.
    more = repo.create_imported_recordings(
        session, new_session=False, channels=[NewRecording(ids.new_id("rec"), "agent", "s/x")]
    )
    assert len(more) == 1
    assert repo.create_imported_recordings(session, new_session=False, channels=[]) == []


def test_ready_failed_and_staging(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, (good, bad) = import_recordings(repo, org.id, 2)
    emit = EmitCounter()
    big = 3 * 1024**3 // 2  # 1.5 GiB: sizes are not small numbers
    assert repo.mark_recording_ready(
        good, storage_key="k.mp3", size=big, content_hash="h", duration=245.3, emit=emit
    )
    assert not repo.mark_recording_ready(
        good, storage_key="k2.mp3", size=1, content_hash="h2", duration=1.0, emit=emit
    )
    rec = repo.get_recording_any(good)
    assert rec is not None and (rec.status, rec.size, rec.duration) == ("ready", big, 245.3)
    assert type(rec.size) is int and rec.ready_at is not None and len(emit.calls) == 1
    repo.clear_staging(good)
    assert repo.get_recording_any(good).staging_key is None  # type: ignore[union-attr]

    failed = EmitCounter()
    repo.mark_recording_failed(bad, "bad audio", failed)
    repo.mark_recording_failed(bad, "again", failed)
    rec = repo.get_recording_any(bad)
    assert rec is not None and (rec.status, rec.failure_reason) == ("failed", "bad audio")
    assert len(failed.calls) == 1
    repo.mark_recording_failed(good, "too late", failed)  # ready stays ready
    assert repo.get_recording_any(good).status == "ready"  # type: ignore[union-attr]


def test_list_recordings_filters_and_pages(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, first = import_recordings(repo, org.id, 3)
    session, second = import_recordings(repo, org.id, 2)
    import_recordings(repo, org.id, 1, livemode=True)
    ready(repo, second[0])
    newest_first = list(reversed(first + second))

    page, more = repo.list_recordings(org.id, False, RecordingFilter(), Page(limit=2))
    assert [r.id for r in page] == newest_first[:2] and more
    page, more = repo.list_recordings(
        org.id, False, RecordingFilter(), Page(limit=10, starting_after=newest_first[1])
    )
    assert [r.id for r in page] == newest_first[2:] and not more
    page, more = repo.list_recordings(
        org.id, False, RecordingFilter(), Page(limit=2, ending_before=newest_first[4])
    )
    assert [r.id for r in page] == newest_first[2:4] and more
    with pytest.raises(UnknownCursor) as caught:
        repo.list_recordings(org.id, True, RecordingFilter(), Page(starting_after=first[0]))
    assert caught.value.param == "starting_after"

    by_session, _ = repo.list_recordings(org.id, False, RecordingFilter(session.id), Page())
    assert {r.id for r in by_session} == set(second)
    by_status, _ = repo.list_recordings(org.id, False, RecordingFilter(status="ready"), Page())
    assert [r.id for r in by_status] == [second[0]]
    rec = repo.get_recording_any(first[0])
    assert rec is not None
    window = RecordingFilter(created_gte=rec.created_at, created_lt=rec.created_at + 1e-6)
    in_window, _ = repo.list_recordings(org.id, False, window, Page())
    assert first[0] in {r.id for r in in_window}
    by_channel, _ = repo.list_recordings(org.id, False, RecordingFilter(channel="agent"), Page())
    assert by_channel == []


def test_delete_recording(repo: Repository, db: Database) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, (rec_id, other) = import_recordings(repo, org.id, 2)
    ready(repo, rec_id)
    emit = EmitCounter()
    deleted = repo.delete_recording(org.id, False, rec_id, grace_seconds=60, emit=emit)
    assert deleted is not None and deleted.storage_key == f"recordings/{rec_id}.mp3"
    assert repo.delete_recording(org.id, False, rec_id, 60, emit) is None
    assert repo.delete_recording(org.id, True, other, 60) is None  # other mode
    assert len(emit.calls) == 1
    assert repo.get_recording(org.id, False, rec_id) is None
    gone = repo.get_recording_any(rec_id)
    assert gone is not None and gone.deleted_at is not None and gone.storage_key is None
    # Its file and staged audio wait out the grace period, then go.
    assert repo.files_to_remove(timeutil.now()) == []
    due = repo.files_to_remove(timeutil.now() + 61)
    assert {f"recordings/{rec_id}.mp3", f"staging/{rec_id}.pcm"} <= set(due)
    assert not repo.mark_recording_ready(
        rec_id, storage_key="x", size=1, content_hash="h", duration=1.0
    )
    repo.forget_removed_files(due)
    repo.forget_removed_files([])
    assert repo.files_to_remove(timeutil.now() + 61) == []
    assert repo.count_recordings_by_status() == {"processing": 1}
    assert count_rows(db, t.file_reaper) == 0


def test_expire_due_recordings(repo: Repository, db: Database) -> None:
    org, _ = repo.ensure_org("acme", 1)
    other, _ = repo.ensure_org("beta", 1)
    _, (a, b, c) = import_recordings(repo, org.id, 3)
    _, (d,) = import_recordings(repo, other.id, 1)
    ready(repo, a)
    later = timeutil.now() + 2 * 86400
    emit = EmitCounter()
    assert repo.expire_due_recordings(timeutil.now(), 0, emit=emit) == []
    first = repo.expire_due_recordings(later, 10, org_id=org.id, limit=2, emit=emit)
    rest = repo.expire_due_recordings(later, 10, org_id=org.id, emit=emit)
    assert sorted(r.id for r in first + rest) == sorted([a, b, c])
    assert len(first) == 2 and len(emit.calls) == 3
    assert repo.get_recording_any(a).status == "expired"  # type: ignore[union-attr]
    assert repo.get_recording_any(d).status == "processing"  # type: ignore[union-attr]
    # Their processing jobs are done (nothing to encode any more); d's is still queued.
    assert repo.count_waiting_jobs() == {"process_recording": 1}
    own = t.file_reaper.c.storage_key.like("staging/%") | t.file_reaper.c.storage_key.like(
        "recordings/%"
    )
    assert count_rows(db, t.file_reaper, own) == 4  # a's mp3 and staging, b's and c's staging
    assert repo.count_recordings_by_status() == {"expired": 3, "processing": 1}


# -- jobs ------------------------------------------------------------------------------------


def test_jobs_claim_finish_retry(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    _, (first, second) = import_recordings(repo, org.id, 2)
    assert repo.claim_job(["finalize_session"], 60) is None  # other kinds only
    job = repo.claim_job(["process_recording"], 60)
    assert job is not None and job.subject_id == first and job.attempts == 1
    assert job.lease_until is not None and job.lease_until > timeutil.now() + 50
    job2 = repo.claim_job(["process_recording"], 60)
    assert job2 is not None and job2.subject_id == second
    assert repo.claim_job(["process_recording"], 60) is None  # both leased
    repo.finish_job(job.id)
    repo.retry_job(job2.id, "boom" * 1000, delay=0.2, give_up=False)
    assert repo.count_waiting_jobs() == {"process_recording": 1}
    assert repo.claim_job(["process_recording"], 60) is None  # not due yet
    time.sleep(0.25)
    again = repo.claim_job(["process_recording"], 60)
    assert again is not None and again.id == job2.id and again.attempts == 2
    assert again.last_error is not None and len(again.last_error) == 2000
    repo.retry_job(again.id, "gave up", delay=0, give_up=True)
    assert repo.count_waiting_jobs() == {}
    assert repo.claim_job(["process_recording"], 60) is None


def test_an_expired_lease_is_claimed_again(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    import_recordings(repo, org.id)
    job = repo.claim_job(["process_recording"], 0.2)
    assert job is not None
    assert repo.claim_job(["process_recording"], 60) is None
    time.sleep(0.25)
    again = repo.claim_job(["process_recording"], 60)
    assert again is not None and again.id == job.id and again.attempts == 2


def test_a_running_job_renews_its_lease_until_another_claim_takes_it(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    import_recordings(repo, org.id)
    job = repo.claim_job(["process_recording"], 0.2)
    assert job is not None
    # Renewed for long: past the first lease the job is still ours. (Sleeps that overrun on a
    # loaded machine only make each step's point stronger.)
    assert repo.extend_job_lease(job.id, job.attempts, 60)
    time.sleep(0.3)
    assert repo.claim_job(["process_recording"], 60) is None
    # Renewed for a moment only, then no more: the lease runs out and another claim takes it.
    assert repo.extend_job_lease(job.id, job.attempts, 0.2)
    time.sleep(0.3)
    taken = repo.claim_job(["process_recording"], 60)  # we stopped renewing: lost
    assert taken is not None and taken.attempts == 2
    assert not repo.extend_job_lease(job.id, job.attempts, 60)
    repo.finish_job(taken.id)
    assert not repo.extend_job_lease(taken.id, taken.attempts, 60)


# -- idempotency -----------------------------------------------------------------------------


def test_idempotency_keys(repo: Repository) -> None:
    now = timeutil.now()
    assert repo.begin_idempotent("org_a", False, "k1", "hash", now, 3600) is None
    running = repo.begin_idempotent("org_a", False, "k1", "hash", now, 3600)
    assert running is not None and running["status"] == "running"
    # Other scope: independent.
    assert repo.begin_idempotent("org_a", True, "k1", "hash", now, 3600) is None
    assert repo.begin_idempotent("org_b", False, "k1", "hash", now, 3600) is None

    repo.finish_idempotent("org_a", False, "k1", 201, b'{"id":"sess_1"}')
    done = repo.begin_idempotent("org_a", False, "k1", "other", now, 3600)
    assert done is not None and done["status"] == "done"
    assert (done["response_status"], done["response_body"]) == (201, '{"id":"sess_1"}')
    assert done["request_hash"] == "hash"

    # A failed request frees its key.
    repo.finish_idempotent("org_b", False, "k1", 0, None)
    assert repo.begin_idempotent("org_b", False, "k1", "hash", now, 3600) is None
    # Past the TTL, or running long after its process must have died: taken over.
    assert repo.begin_idempotent("org_a", False, "k1", "new", now + 7200, 3600) is None
    assert repo.begin_idempotent("org_b", False, "k1", "hash", now + 601, 3600) is None


# -- events ----------------------------------------------------------------------------------


def test_insert_event_writes_the_outbox(repo: Repository, db: Database) -> None:
    org, _ = repo.ensure_org("acme", 30)
    with db.write() as conn:
        event_id = insert_event(conn, org.id, False, "session.created", {"id": "sess_1"})
    with db.read() as conn:
        row = conn.execute(select(t.events).where(t.events.c.id == event_id)).mappings().one()
    assert row["livemode"] is False and row["type"] == "session.created"
    payload = json.loads(row["payload"])
    assert payload["data"] == {"id": "sess_1"} and payload["livemode"] is False
    assert metadata_json({"a": "b"}) == '{"a":"b"}' and metadata_json(None) is None


def test_user_text_round_trips_exactly(repo: Repository) -> None:
    org, _ = repo.ensure_org("ä → 日本 🎧", 30)
    text = "x" * 10_000 + "é🎧"  # Text columns: no length limit on either backend
    session = replace(new_session(org.id), source_language=text, metadata=json.dumps({"k": text}))
    repo.insert_session(session)
    assert repo.get_session_any(session.id) == session
    assert repo.get_org_by_name("ä → 日本 🎧") == org


def test_finalizing_a_live_session_is_claimed_by_any_replica(repo: Repository) -> None:
    """Its audio is in storage (issue 17): no node affinity, whoever held the stream."""
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)
    repo.start_session(session.id, node="replica-a")
    repo.end_session(org.id, False, session.id)
    job = repo.claim_job(["finalize_session"], 60)
    assert job is not None and job.subject_id == session.id and job.node is None


def test_a_finalize_job_queued_with_a_node_by_an_older_release_is_claimed_anywhere(
    repo: Repository,
) -> None:
    org, _ = repo.ensure_org("acme", 30)
    session = new_session(org.id)
    repo.insert_session(session)
    repo.end_session(org.id, False, session.id)
    with repo.db.write() as conn:
        conn.exec_driver_sql("UPDATE jobs SET node = 'replica-gone'")
    job = repo.claim_job(["finalize_session"], 60)
    assert job is not None and job.subject_id == session.id


def test_jobs_without_a_node_are_claimed_anywhere(repo: Repository) -> None:
    org, _ = repo.ensure_org("acme", 30)
    import_recordings(repo, org.id, 1)
    assert repo.claim_job(["process_recording"], 60) is not None
