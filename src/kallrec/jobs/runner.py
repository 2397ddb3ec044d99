"""The background work of a server process: the job queue, retention, the file reaper.

Jobs are rows claimed with a lease; a process that dies mid-job lets its lease run out and the job
is picked up again (here or by another process), which is why every job is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import anyio

from kallrec.db.models import Job
from kallrec.events import recording_event
from kallrec.jobs.processing import PermanentJobError, process_recording
from kallrec.lifecycle import end_idle_sessions, purge_expired, reap_files
from kallrec.live.finalize import WritersStillOpen, finalize_session
from kallrec.live.flush import Flusher, flush_loop
from kallrec.live.notify import listen_for_ended_sessions
from kallrec.runtime import Runtime
from kallrec.storage import KeepsFilesOpen, StorageError
from kallrec.tempfiles import sweep
from kallrec.webhooks.delivery import delivery_worker

log = logging.getLogger("kallrec.jobs")

MAX_ATTEMPTS = 5
HANDLERS: dict[str, Callable[[Runtime, str], Awaitable[None]]] = {
    "process_recording": process_recording,
    "finalize_session": finalize_session,
}


def _backoff(attempts: int) -> float:
    return min(300.0, 2.0**attempts) * random.uniform(0.8, 1.2)


async def run_one_job(rt: Runtime) -> bool:
    """Claims and runs one due job; False when there was none."""
    job = await anyio.to_thread.run_sync(
        rt.repo.claim_job, tuple(HANDLERS), rt.settings.job_lease_seconds
    )
    if job is None:
        return False
    renewer = asyncio.create_task(_keep_leased(rt, job))
    try:
        await HANDLERS[job.kind](rt, job.subject_id)
    except WritersStillOpen as exc:
        # Not due again for a moment, so the next claim takes other work (or finds none).
        await anyio.to_thread.run_sync(rt.live_repo.postpone_job, job.id, exc.retry_in)
    except PermanentJobError as exc:
        await _give_up(rt, job.id, job.subject_id, str(exc))
    except Exception as exc:
        log.exception("job %s (%s %s) failed", job.id, job.kind, job.subject_id)
        # An unreachable store is an outage, not a fault of this recording: wait it out.
        if job.attempts >= MAX_ATTEMPTS and not isinstance(exc, StorageError):
            await _give_up(rt, job.id, job.subject_id, repr(exc))
        else:
            await anyio.to_thread.run_sync(
                rt.repo.retry_job, job.id, repr(exc), _backoff(job.attempts), False
            )
    else:
        await anyio.to_thread.run_sync(rt.repo.finish_job, job.id)
    finally:
        renewer.cancel()
    return True


async def _keep_leased(rt: Runtime, job: Job) -> None:
    """Renews the job's lease while it runs, so a job longer than one lease is not taken and
    run again by another worker; a lost claim (the lease ran out anyway) is only logged."""
    lease = rt.settings.job_lease_seconds
    while True:
        await anyio.sleep(lease / 3)
        renewed = await anyio.to_thread.run_sync(
            rt.repo.extend_job_lease, job.id, job.attempts, lease
        )
        if not renewed:
            log.warning("job %s lost its lease while running", job.id)
            return


async def _give_up(rt: Runtime, job_id: str, subject_id: str, reason: str) -> None:
    log.error("job %s gave up: %s", job_id, reason)
    await anyio.to_thread.run_sync(
        rt.repo.mark_recording_failed, subject_id, reason, recording_event("recording.failed")
    )
    await anyio.to_thread.run_sync(rt.repo.retry_job, job_id, reason, 0, True)


async def job_worker(rt: Runtime) -> None:
    while True:
        try:
            if await run_one_job(rt):
                continue
        except Exception:  # the database is briefly unavailable: try again shortly
            log.exception("job queue unavailable")
        rt.jobs_pending.clear()
        with anyio.move_on_after(rt.settings.job_poll_seconds):
            await rt.jobs_pending.wait()


async def housekeeping(rt: Runtime) -> None:
    """Retention purge, file reaping and last-used stamps, every purge interval."""
    while True:
        try:
            await purge_expired(rt)
            await end_idle_sessions(rt)
            await reap_files(rt)
            await anyio.to_thread.run_sync(sweep, rt.settings.tmp_dir, time.time())
            await anyio.to_thread.run_sync(
                rt.webhooks.prune_history, time.time() - rt.settings.webhook_history_days * 86400
            )
            await rt.auth.flush_last_used()
        except Exception:
            log.exception("housekeeping failed; will retry")
        await anyio.sleep(rt.settings.purge_interval_seconds)


async def flush_live_audio(rt: Runtime) -> None:
    """Sends live calls' audio to storage every ``live_flush_seconds`` (live/flush.py)."""
    flusher = Flusher(
        rt.live,
        rt.live_repo,
        rt.storage,
        rt.scratch / "spool",
        rt.settings.live_spool_max_bytes,
        rt.metrics,
        heartbeat_every=rt.settings.live_writer_timeout_seconds / 4,
    )
    await flush_loop(flusher, rt.settings.live_flush_seconds, rt.jobs_wakeup)


async def every_second(rt: Runtime) -> None:
    """Hands the request counts to Prometheus; gives back file descriptors nobody used lately
    (a deleted file's disk space is freed with them)."""
    while True:
        await anyio.sleep(1.0)
        rt.metrics.flush()
        if isinstance(rt.storage, KeepsFilesOpen):
            rt.storage.close_stale_files()


async def run_background(rt: Runtime, concurrency: int = 2) -> None:
    # Before any job runs: what a crashed process left in its scratch goes first.
    await anyio.to_thread.run_sync(sweep, rt.settings.tmp_dir, time.time())
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(job_worker, rt)
        tg.start_soon(housekeeping, rt)
        tg.start_soon(delivery_worker, rt)
        tg.start_soon(flush_live_audio, rt)
        tg.start_soon(listen_for_ended_sessions, rt)
        tg.start_soon(every_second, rt)
