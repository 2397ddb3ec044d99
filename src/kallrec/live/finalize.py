"""The durable job that turns an ended session's live tracks into recordings.

Queued in the transaction that ends the session, so a crash right after the end still yields the
recordings. Idempotent: the session's ``finalized_at`` is set in the same transaction that inserts
the recordings, and a re-run after that only tidies up the tracks.

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
from kallrec.db.repository import NewRecording
from kallrec.importing import staging_key
from kallrec.live.tracks import FinishedTracks, finished_tracks, remove_tracks, track_dir
from kallrec.runtime import Runtime
from kallrec.tempfiles import new_temp_path

if TYPE_CHECKING:
    import numpy as np


def session_channels(tracks: FinishedTracks | None, channels: str) -> list[str]:
    """The recordings a session's tracks become: none without audio, ``mixed``, and for
    ``dual`` also ``agent`` and ``customer`` (a speaker who never spoke gets silence)."""
    if tracks is None:
        return []
    return ["mixed", "agent", "customer"] if channels == "dual" else ["mixed"]


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


async def finalize_session(rt: Runtime, session_id: str) -> None:
    session = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    if session is None:
        return
    directory = track_dir(rt.settings.data_dir, session_id)
    if session.finalized_at is None:
        tracks = await anyio.to_thread.run_sync(finished_tracks, directory)
        staged: list[NewRecording] = []
        for channel in session_channels(tracks, session.recording_channels):
            assert tracks is not None
            rec_id = ids.new_id("rec")
            await _stage_channel(rt, staging_key(rec_id), tracks, channel)
            staged.append(NewRecording(rec_id, channel, staging_key(rec_id)))
        created = await anyio.to_thread.run_sync(rt.repo.finalize_session, session_id, staged)
        if created is None:  # another process finished first: our staging is surplus
            for item in staged:
                await rt.storage.delete(item.staging_key)
        elif created:
            rt.jobs_wakeup()
    rt.live.forget(session_id)
    await anyio.to_thread.run_sync(remove_tracks, directory)
