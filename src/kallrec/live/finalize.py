"""The durable job that turns an ended session's live tracks into recordings.

Queued in the transaction that ends the session, so a crash right after the end still yields the
recordings. Idempotent: the session's ``finalized_at`` is set in the same transaction that inserts
the recordings, and a re-run after that only tidies up the tracks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from kallrec import ids
from kallrec.db.repository import NewRecording
from kallrec.importing import stage_samples, staging_key
from kallrec.live.tracks import read_tracks, remove_tracks, track_dir
from kallrec.runtime import Runtime

if TYPE_CHECKING:
    import numpy as np


def session_channels(tracks: dict[str, np.ndarray], channels: str) -> list[tuple[str, np.ndarray]]:
    import numpy as np  # the audio stack: loaded on first use

    from kallrec.audio.mix import mix

    if not tracks or not any(len(x) for x in tracks.values()):
        return []
    recordings = [("mixed", mix(list(tracks.values())))]
    if channels == "dual":
        silence = np.zeros(len(recordings[0][1]), dtype=np.int16)
        recordings += [(name, tracks.get(name, silence)) for name in ("agent", "customer")]
    return recordings


async def finalize_session(rt: Runtime, session_id: str) -> None:
    session = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    if session is None:
        return
    directory = track_dir(rt.settings.data_dir, session_id)
    if session.finalized_at is None:
        tracks = await anyio.to_thread.run_sync(read_tracks, directory)
        wanted = session_channels(tracks, session.recording_channels)
        staged: list[NewRecording] = []
        for channel, samples in wanted:
            rec_id = ids.new_id("rec")
            await stage_samples(rt, staging_key(rec_id), samples)
            staged.append(NewRecording(rec_id, channel, staging_key(rec_id)))
        created = await anyio.to_thread.run_sync(rt.repo.finalize_session, session_id, staged)
        if created is None:  # another process finished first: our staging is surplus
            for item in staged:
                await rt.storage.delete(item.staging_key)
        elif created:
            rt.jobs_wakeup()
    rt.live.forget(session_id)
    await anyio.to_thread.run_sync(remove_tracks, directory)
