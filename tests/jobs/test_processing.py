"""Recording processing is a durable, idempotent job: crashes delay recordings, never lose them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kallrec.importing import ImportRequest, import_audio
from kallrec.jobs.processing import process_recording
from kallrec.jobs.runner import run_one_job
from kallrec.object_keys import audio_key
from kallrec.runtime import Runtime
from tests.conftest import drain_jobs, tone, write_wav


@pytest.fixture
async def org_id(runtime: Runtime) -> str:
    return runtime.repo.ensure_org("acme", 30)[0].id


async def _import(runtime: Runtime, org_id: str, tmp_path: Path, seconds: float = 2.0) -> str:
    wav = write_wav(tmp_path / "call.wav", tone(seconds, 440))
    recs = await import_audio(runtime, org_id, False, ImportRequest(wav, "call.wav"))
    return recs[0].id


def _files(runtime: Runtime, pattern: str) -> list[Path]:
    return list((runtime.settings.data_dir / "audio").rglob(pattern))


async def test_a_job_whose_worker_died_is_picked_up_after_its_lease(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    runtime.settings = replace(runtime.settings, job_lease_seconds=0.05)
    claimed = runtime.repo.claim_job(["process_recording"], 0.05)  # a worker that then dies
    assert claimed is not None
    assert runtime.repo.get_recording_any(rec_id).status == "processing"  # type: ignore[union-attr]
    import anyio

    await anyio.sleep(0.1)
    assert await run_one_job(runtime)
    rec = runtime.repo.get_recording_any(rec_id)
    assert rec is not None and rec.status == "ready"
    assert not _files(runtime, "*.pcm")


async def test_a_claimed_job_is_not_taken_twice_while_leased(runtime, org_id, tmp_path):
    await _import(runtime, org_id, tmp_path)
    assert runtime.repo.claim_job(["process_recording"], 60) is not None
    assert runtime.repo.claim_job(["process_recording"], 60) is None


async def test_running_the_job_twice_gives_the_same_ready_recording(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    await process_recording(runtime, rec_id)
    first = runtime.repo.get_recording_any(rec_id)
    await process_recording(runtime, rec_id)
    assert runtime.repo.get_recording_any(rec_id) == first
    assert len(_files(runtime, "*.mp3")) == 1


async def test_crash_after_the_flip_only_leaves_staging_to_tidy(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    rec = runtime.repo.get_recording_any(rec_id)
    assert rec is not None and rec.staging_key
    # Simulate: the MP3 was stored and the row flipped, then the process died.
    await process_recording(runtime, rec_id)
    from sqlalchemy import update

    from kallrec.db import schema as t

    with runtime.db.write() as conn:
        conn.execute(
            update(t.recordings)
            .where(t.recordings.c.id == rec_id)
            .values(staging_key=rec.staging_key)
        )
    pcm = runtime.settings.data_dir / "audio" / rec.staging_key
    pcm.parent.mkdir(parents=True, exist_ok=True)
    pcm.write_bytes(b"\0\0" * 100)
    await process_recording(runtime, rec_id)
    assert not pcm.exists()
    assert runtime.repo.get_recording_any(rec_id).staging_key is None  # type: ignore[union-attr]


async def test_a_recording_deleted_while_encoding_leaves_no_file(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    runtime.repo.delete_recording(org_id, False, rec_id, 0)
    await drain_jobs(runtime)
    assert not _files(runtime, "*.mp3")


async def test_missing_staged_audio_fails_the_recording_at_once(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    for pcm in _files(runtime, "*.pcm"):
        pcm.unlink()
    await drain_jobs(runtime)
    rec = runtime.repo.get_recording_any(rec_id)
    assert rec is not None and rec.status == "failed" and "missing" in (rec.failure_reason or "")


async def test_transient_errors_are_retried_later(runtime, org_id, tmp_path, monkeypatch):
    rec_id = await _import(runtime, org_id, tmp_path)
    calls = {"n": 0}
    real_put = runtime.storage.put_file

    async def flaky_put(key, src):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup")
        return await real_put(key, src)

    monkeypatch.setattr(runtime.storage, "put_file", flaky_put)
    assert await run_one_job(runtime)
    assert runtime.repo.get_recording_any(rec_id).status == "processing"  # type: ignore[union-attr]
    from sqlalchemy import update

    from kallrec.db import schema as t

    with runtime.db.write() as conn:  # skip the backoff wait
        conn.execute(update(t.jobs).values(run_after=0))
    assert await run_one_job(runtime)
    assert runtime.repo.get_recording_any(rec_id).status == "ready"  # type: ignore[union-attr]


async def test_the_mp3_is_stored_under_the_org(runtime, org_id, tmp_path):
    rec_id = await _import(runtime, org_id, tmp_path)
    await drain_jobs(runtime)
    rec = runtime.repo.get_recording_any(rec_id)
    assert rec is not None and rec.storage_key == audio_key(org_id, rec_id)
    assert not _files(runtime, ".*.tmp")


async def test_a_job_longer_than_its_lease_keeps_its_claim(runtime, org_id, tmp_path, monkeypatch):
    import anyio

    import kallrec.jobs.runner as runner

    await _import(runtime, org_id, tmp_path)
    runtime.settings = replace(runtime.settings, job_lease_seconds=0.3)
    slow_started = anyio.Event()
    stolen: list[object] = []

    async def slow(rt, subject_id):  # type: ignore[no-untyped-def]
        slow_started.set()
        await anyio.sleep(1.0)  # three leases long
        stolen.append(rt.repo.claim_job(["process_recording"], 0.3))

    monkeypatch.setitem(runner.HANDLERS, "process_recording", slow)
    assert await run_one_job(runtime)
    assert stolen == [None]  # nobody could claim it while it ran
