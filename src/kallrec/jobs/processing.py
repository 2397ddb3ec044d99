"""The durable job that turns a recording's staged PCM into its MP3.

Idempotent: run twice (a crash, an expired lease), it writes the same object again and the
'ready' flip happens once. The row becomes ready only after the MP3 is durable in storage.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import BinaryIO

import anyio

from kallrec import timeutil
from kallrec.events import recording_event
from kallrec.object_keys import audio_key
from kallrec.peaks import peaks_json
from kallrec.runtime import Runtime
from kallrec.storage import ObjectMissing

log = logging.getLogger("kallrec.jobs")


class PermanentJobError(Exception):
    """Retrying cannot help; the recording is marked failed at once, with the message as its
    ``failure_reason`` (a short code: clients see it)."""


def _encode(pcm_path: Path, mp3_path: Path, bitrate: int) -> tuple[int, str, float]:
    # The audio stack is loaded on first use: a worker that only serves never needs it.
    from kallrec.audio.decode import TARGET_RATE
    from kallrec.audio.encode import encode_pcm_file

    digest = hashlib.sha256()

    class _Hashing:
        def __init__(self, fh: BinaryIO) -> None:
            self.fh = fh

        def write(self, data: bytes | bytearray, /) -> int:
            digest.update(data)
            return self.fh.write(data)

    # Read and encoded block by block: a call of any length costs the memory of one block.
    with open(mp3_path, "wb") as fh:
        size, samples = encode_pcm_file(pcm_path, _Hashing(fh), bitrate_kbps=bitrate)
    return size, digest.hexdigest(), samples / TARGET_RATE


async def process_recording(rt: Runtime, recording_id: str) -> None:
    rec = await anyio.to_thread.run_sync(rt.repo.get_recording_any, recording_id)
    if rec is None or rec.deleted_at is not None or rec.status not in ("processing", "ready"):
        return
    if rec.status == "ready":  # a crash came after the flip: only the staging is left to tidy
        if rec.staging_key:
            await rt.storage.delete(rec.staging_key)
            await anyio.to_thread.run_sync(rt.repo.clear_staging, rec.id)
        return
    if not rec.staging_key:
        raise PermanentJobError("no_audio")  # nothing was ever staged for it

    await anyio.Path(rt.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.scratch) as work:
        pcm, mp3 = Path(work) / "in.pcm", Path(work) / "out.mp3"
        try:
            await rt.storage.fetch_to(rec.staging_key, pcm)
        except ObjectMissing:
            raise PermanentJobError("audio_missing") from None  # staged, then lost
        size, content_hash, duration = await anyio.to_thread.run_sync(
            _encode, pcm, mp3, rt.settings.mp3_bitrate_kbps
        )
        # The waveform from the same PCM, stored before the flip: a ready recording has peaks.
        peaks = await anyio.to_thread.run_sync(peaks_json, rec.id, pcm)
        key = audio_key(rec.org_id, rec.id)
        await rt.storage.put_file(key, mp3)
    await anyio.to_thread.run_sync(rt.playback.put_peaks, rec.id, peaks, timeutil.now())
    flipped = await anyio.to_thread.run_sync(
        lambda: rt.repo.mark_recording_ready(
            rec.id,
            storage_key=key,
            size=size,
            content_hash=content_hash,
            duration=duration,
            emit=recording_event("recording.ready"),
        )
    )
    if not flipped:  # deleted or purged while we encoded: our object must not linger
        await rt.storage.delete(key)
        await anyio.to_thread.run_sync(rt.playback.delete_peaks, rec.id)
    await rt.storage.delete(rec.staging_key)
    await anyio.to_thread.run_sync(rt.repo.clear_staging, rec.id)
    log.info("recording %s ready: %d bytes, %.1f s", rec.id, size, duration)
