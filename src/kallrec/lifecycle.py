"""What happens to recordings outside a request: deletion, retention, ending a session."""

from __future__ import annotations

import logging

import anyio

from kallrec import timeutil
from kallrec.db.models import Recording, Session
from kallrec.db.repository import EXPIRE_BATCH
from kallrec.events import recording_event, session_event
from kallrec.runtime import Runtime

log = logging.getLogger("kallrec.lifecycle")


async def delete_recording(
    rt: Runtime, org_id: str, livemode: bool, recording_id: str
) -> Recording | None:
    rec = await anyio.to_thread.run_sync(
        rt.repo.delete_recording,
        org_id,
        livemode,
        recording_id,
        rt.settings.delete_grace_seconds,
        recording_event("recording.deleted"),
    )
    if rec is not None:
        rt.announce_change()
    return rec


# Why a session ended (Kallglot's end reasons); POST /v1/sessions/{id}/end takes any of them.
END_REASONS = ("completed", "customer_hangup", "agent_hangup", "error", "timeout")


async def end_session(
    rt: Runtime, org_id: str, livemode: bool, session_id: str, reason: str = "completed"
) -> Session | None:
    """Ends the session (idempotent: an ended session keeps its first reason). Its recordings
    exist (``processing``) once this returns; a durable job fills them from the live tracks."""
    session = await anyio.to_thread.run_sync(
        lambda: rt.repo.end_session(
            org_id, livemode, session_id, reason, emit=session_event("session.ended")
        )
    )
    if session is not None:
        rt.live.forget(session_id)
        rt.jobs_wakeup()
    return session


async def end_idle_sessions(rt: Runtime) -> int:
    """Ends sessions that have had no audio for ``session_idle_seconds``."""
    idle = await anyio.to_thread.run_sync(
        rt.repo.idle_sessions, timeutil.now() - rt.settings.session_idle_seconds
    )
    for session in idle:
        await end_session(rt, session.org_id, session.livemode, session.id, "timeout")
    return len(idle)


async def purge_expired(
    rt: Runtime, before: float | None = None, org_id: str | None = None
) -> list[Recording]:
    """Expires every recording past its retention (idempotent, crash-safe: files go to the
    reaper in the same transaction that flips the rows)."""
    cutoff = timeutil.now() if before is None else before
    expired: list[Recording] = []
    while True:
        batch = await anyio.to_thread.run_sync(
            lambda: rt.repo.expire_due_recordings(
                cutoff,
                rt.settings.delete_grace_seconds,
                org_id=org_id,
                emit=recording_event("recording.expired"),
            )
        )
        expired.extend(batch)
        if len(batch) < EXPIRE_BATCH:
            break
    if expired:
        rt.announce_change()
        log.info("expired %d recording(s)", len(expired))
    return expired


async def reap_files(rt: Runtime) -> int:
    """Removes files whose grace period is over; returns how many."""
    keys = await anyio.to_thread.run_sync(rt.repo.files_to_remove, timeutil.now())
    for key in keys:
        await rt.storage.delete(key)
    await anyio.to_thread.run_sync(rt.repo.forget_removed_files, keys)
    return len(keys)
