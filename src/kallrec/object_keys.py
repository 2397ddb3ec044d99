"""The storage key layout: where each kind of object lives, in one place.

Pure (no storage, no database): the jobs that write objects, the repository that deletes them and
the conversion cache all name keys through these functions.

* ``recordings/<org_id>/<recording_id>.mp3`` a recording's audio (the 8 kHz MP3 clients get);
* ``staging/<recording_id>.pcm`` an import's decoded PCM, until its job encodes it;
* ``staging/<recording_id>-<stg_id>.pcm`` a live call's PCM, one per finalization attempt;
* ``converted/<recording_id>/<sample_rate>.<ext>`` a kept conversion (converted.py);
* ``live/<pack_id>.seg`` live calls' audio as one process flushed it in one round (the
  segments of its calls, live/segments.py), until every one of those calls is finalized.
"""

from __future__ import annotations

from kallrec import ids
from kallrec.audio.formats import FORMATS, SAMPLE_RATES

# Recordings are 8 kHz MP3s (spec §1): that format needs no conversion.
ORIGINAL_FORMAT = "mp3"
ORIGINAL_RATE = 8000


def audio_key(org_id: str, recording_id: str) -> str:
    return f"recordings/{org_id}/{recording_id}.mp3"


def import_staging_key(recording_id: str) -> str:
    return f"staging/{recording_id}.pcm"


def live_staging_key(recording_id: str) -> str:
    """Unique per attempt: two runs of the job (a lease that ran out) never share a file, so
    the one that loses can delete its own without touching the winner's."""
    return f"staging/{recording_id}-{ids.new_id('stg')}.pcm"


def live_pack_key(pack_id: str) -> str:
    return f"live/{pack_id}.seg"


def converted_key(recording_id: str, fmt: str, sample_rate: int) -> str:
    return f"converted/{recording_id}/{sample_rate}.{fmt}"


def is_original(fmt: str, sample_rate: int) -> bool:
    return fmt == ORIGINAL_FORMAT and sample_rate == ORIGINAL_RATE


def converted_keys(recording_id: str) -> list[str]:
    """Every key a recording's conversions can have (deleting a missing one is harmless)."""
    return [
        converted_key(recording_id, fmt, rate)
        for fmt in FORMATS
        for rate in SAMPLE_RATES
        if not is_original(fmt, rate)
    ]
