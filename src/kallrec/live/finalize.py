"""The durable job that turns an ended session's live tracks into its recordings' audio.

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

from kallrec import ids
from kallrec.db.models import Session
from kallrec.db.repository import NewRecording, live_channels
from kallrec.events import recording_event
from kallrec.live.tracks import FinishedTracks, finished_tracks, remove_tracks, track_dir
from kallrec.object_keys import live_staging_key
from kallrec.runtime import Runtime
from kallrec.tempfiles import new_temp_path

if TYPE_CHECKING:
    import numpy as np


NO_AUDIO = "no_audio"


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
    directory = track_dir(rt.settings.data_dir, session_id)
    if session.finalized_at is None:
        tracks = await anyio.to_thread.run_sync(finished_tracks, directory)
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
                session_id,
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
    rt.live.forget(session_id)
    await anyio.to_thread.run_sync(remove_tracks, directory)
