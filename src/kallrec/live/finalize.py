"""The durable job that turns an ended session's live audio into its recordings' audio.

It runs on any replica: the audio is in storage, as the segments every process that held the
session's stream flushed (live/flush.py, indexed in ``live_segments``). The job first waits for
those processes: while any of them still has a fresh heartbeat in ``live_writers`` (it is sending
its last audio), the job is put back for a moment; one that is dead (no heartbeat for
``live_writer_timeout_seconds``) is not waited for, and what it had not flushed is lost. Then the
segments are applied, in the order they were cut (the later wins where two overlap), one at a
time into local track files in this process's scratch, which are mixed and encoded as before.
Sessions whose tracks an older release wrote to this data directory are finalized from there.

The recordings themselves are made (``processing``, no audio yet) in the transaction that ends the
session, which also queues this job: a crash right after the end still yields them. Idempotent:
the session's ``finalized_at`` is set in the same transaction that hands the recordings their
staged audio, and a re-run after that only tidies up the tracks. A session that recorded and got
no audio at all ends with its recordings ``failed`` (``no_audio``) and ``recording.failed``
events: never with nothing.

Every recording's PCM is produced block by block from the track files (mixed where needed) into
a scratch file that storage then takes: memory stays that of a few blocks whatever the length of
the call (bench/finalize_memory.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from kallrec import ids, timeutil
from kallrec.db.models import Session
from kallrec.db.repository import NewRecording, live_channels
from kallrec.events import recording_event
from kallrec.live.assemble import assemble
from kallrec.live.tracks import FinishedTracks, finished_tracks, remove_tracks, track_dir
from kallrec.object_keys import live_staging_key
from kallrec.runtime import Runtime
from kallrec.tempfiles import new_temp_path

if TYPE_CHECKING:
    import numpy as np


NO_AUDIO = "no_audio"
# How soon a finalize job that waits for live writers looks again.
WRITERS_RECHECK_SECONDS = 0.5


class WritersStillOpen(Exception):
    """Some process is still flushing this session's audio: run the job again shortly (not a
    failure, not an attempt)."""

    def __init__(self, session_id: str, writers: list[str]) -> None:
        super().__init__(f"session {session_id}: waiting for live writers {', '.join(writers)}")
        self.retry_in = WRITERS_RECHECK_SECONDS


def session_channels(tracks: FinishedTracks | None, channels: str) -> list[str]:
    """The recordings a session's tracks become: ``mixed``, and for ``dual`` also ``agent`` and
    ``customer`` (a speaker who never spoke gets silence); without audio, only a ``mixed`` one,
    which fails (``no_audio``)."""
    if tracks is None:
        return ["mixed"]
    return live_channels(channels)


def channel_blocks(tracks: FinishedTracks, channel: str) -> Iterator[np.ndarray]:
    """One recording's samples, block by block."""
    import numpy as np  # the audio stack: loaded on first use

    from kallrec.audio.mix import mix

    for block in tracks.blocks():
        if channel == "mixed":
            yield mix(list(block.values()))
        else:
            size = len(next(iter(block.values())))
            yield block.get(channel, np.zeros(size, dtype="<i2"))


def write_channel(tracks: FinishedTracks, channel: str, dest: Path) -> None:
    with dest.open("wb") as fh:
        for samples in channel_blocks(tracks, channel):
            fh.write(samples.astype("<i2", copy=False).tobytes())


async def _stage_channel(rt: Runtime, key: str, tracks: FinishedTracks, channel: str) -> None:
    path = await anyio.to_thread.run_sync(new_temp_path, rt.scratch, ".pcm")
    try:
        await anyio.to_thread.run_sync(write_channel, tracks, channel, path)
        await rt.storage.put_file(key, path)
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


async def _targets(
    rt: Runtime, session: Session, tracks: FinishedTracks | None
) -> list[NewRecording]:
    """The recordings waiting for this session's audio: those made when it ended, or (a session
    ended by a kallrec from before they were made there) new ones."""
    made = await anyio.to_thread.run_sync(rt.repo.live_recordings, session.id)
    if not made and session.recording_id is None:
        channels = session_channels(tracks, session.recording_channels)
        return [NewRecording(ids.new_id("rec"), channel, None) for channel in channels]
    return [
        NewRecording(rec.id, rec.channel, None)
        for rec in made
        if rec.status == "processing" and rec.deleted_at is None and rec.staging_key is None
    ]


async def finalize_session(rt: Runtime, session_id: str) -> None:
    session = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    if session is None:
        return
    legacy = track_dir(rt.settings.data_dir, session_id)
    if session.finalized_at is None:
        since = timeutil.now() - rt.settings.live_writer_timeout_seconds
        writers = await anyio.to_thread.run_sync(rt.live_repo.active_writers, session_id, since)
        if writers:
            raise WritersStillOpen(session_id, writers)
    segments = await anyio.to_thread.run_sync(rt.live_repo.segments, session_id)
    if session.finalized_at is None:
        work = await anyio.to_thread.run_sync(new_temp_path, rt.scratch, ".live")
        await anyio.Path(work).unlink()
        try:
            if segments:
                tracks = await assemble(rt.storage, segments, work)
            else:  # written by an older release, on this replica's disk (or nothing at all)
                tracks = await anyio.to_thread.run_sync(finished_tracks, legacy)
            await _finalize(rt, session, tracks)
        finally:
            await anyio.to_thread.run_sync(remove_tracks, work)
    rt.live.forget(session_id)
    await _remove_segments(rt, session_id)
    await anyio.to_thread.run_sync(remove_tracks, legacy)


async def _finalize(rt: Runtime, session: Session, tracks: FinishedTracks | None) -> None:
    targets = await _targets(rt, session, tracks)
    staged: list[NewRecording] = []
    keys: list[str] = []
    if tracks is not None:
        try:
            for target in targets:
                keys.append(live_staging_key(target.id))
                await _stage_channel(rt, keys[-1], tracks, target.channel)
                staged.append(NewRecording(target.id, target.channel, keys[-1]))
        except BaseException:
            with anyio.CancelScope(shield=True):
                for key in keys:
                    await rt.storage.delete(key)
            raise
    given = await anyio.to_thread.run_sync(
        lambda: rt.repo.finalize_session(
            session.id,
            staged,
            failed=[] if tracks is not None else targets,
            failure_reason=NO_AUDIO,
            emit_failed=recording_event("recording.failed"),
        )
    )
    if given is None:  # another process finished first: our staging is surplus
        for key in keys:
            await rt.storage.delete(key)
    elif given:
        rt.jobs_wakeup()


async def _remove_segments(rt: Runtime, session_id: str) -> None:
    """The segments are no longer needed once the session is finalized: their rows go, and each
    packed object none of whose segments is left goes to the file reaper (it may hold other
    calls' segments, which are still needed)."""
    await anyio.to_thread.run_sync(rt.live_repo.forget_segments, session_id)
