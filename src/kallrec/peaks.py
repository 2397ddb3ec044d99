"""A recording's waveform peaks as ``/peaks`` sends them (issue 16).

Made by the processing job from the staged PCM it encodes (``peaks_json``), so a new recording
has its peaks the moment it is ready. Recordings made before peaks existed get theirs on their
first ``/peaks`` request (``recording_peaks``): their MP3 is decoded once, off the event loop,
one decode per recording at a time however many players ask, and the result is stored.

The JSON is compact on purpose (no spaces, integers 0..255): ``{"object": "peaks",
"recording_id", "duration", "length", "seconds_per_peak", "max": SCALE, "data": [...]}``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import anyio

from kallrec import timeutil
from kallrec.audio.peak_scale import SCALE
from kallrec.db.models import Recording
from kallrec.runtime import Runtime
from kallrec.singleflight import SingleFlight

# Lazy computations in flight in this process, by recording id.
_computing: SingleFlight[str, str] = SingleFlight()


def peaks_document(recording_id: str, duration: float, peaks: list[int]) -> str:
    body: dict[str, Any] = {
        "object": "peaks",
        "recording_id": recording_id,
        "duration": round(duration, 3),
        "length": len(peaks),
        "seconds_per_peak": round(duration / len(peaks), 6) if peaks else 0,
        "max": SCALE,
        "data": peaks,
    }
    return json.dumps(body, separators=(",", ":"))


def peaks_json(recording_id: str, pcm: Path) -> str:
    """Peaks of a staged recording (raw 16-bit mono PCM at 8 kHz); blocking, numpy."""
    from kallrec.audio.decode import TARGET_RATE
    from kallrec.audio.peaks import peaks_of_pcm_file

    samples = pcm.stat().st_size // 2
    return peaks_document(recording_id, samples / TARGET_RATE, peaks_of_pcm_file(pcm, TARGET_RATE))


def _peaks_of_mp3(recording_id: str, mp3: Path, duration: float | None) -> str:
    from kallrec.audio.decode import TARGET_RATE, decode_file
    from kallrec.audio.mix import downmix
    from kallrec.audio.peaks import peaks_of

    decoded = decode_file(mp3)
    mono = downmix(decoded.samples)
    if duration is not None:
        # The decoder may add the encoder's padding; the peaks must span what the recording
        # says it lasts, as those made from its PCM do, so they line up with playback.
        mono = mono[: round(duration * TARGET_RATE)]
    return peaks_document(recording_id, len(mono) / TARGET_RATE, peaks_of(mono, TARGET_RATE))


async def recording_peaks(rt: Runtime, rec: Recording) -> str:
    """The stored peaks of a ready recording, computed now if it has none yet."""
    stored = await anyio.to_thread.run_sync(rt.playback.get_peaks, rec.id)
    if stored is not None:
        return stored
    return await _computing.do(rec.id, lambda: _compute(rt, rec))


async def _compute(rt: Runtime, rec: Recording) -> str:
    assert rec.storage_key is not None
    await anyio.Path(rt.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.scratch) as work:
        mp3 = Path(work) / "audio.mp3"
        await rt.storage.fetch_to(rec.storage_key, mp3)
        document = await anyio.to_thread.run_sync(_peaks_of_mp3, rec.id, mp3, rec.duration)
    await anyio.to_thread.run_sync(rt.playback.put_peaks, rec.id, document, timeutil.now())
    return document
