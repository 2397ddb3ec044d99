"""Turning an audio file into recordings: validate and decode now, encode in a durable job.

Everything that can reject the file happens before anything is stored, so a bad upload leaves no
trace. What is stored before the answer is the decoded 8 kHz PCM of each channel (staging) plus
the recording rows and their jobs, in one transaction: from there a crash can only delay a
recording, never lose it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from kallrec import ids, timeutil
from kallrec.audio.errors import InvalidAudio, UnsupportedAudio
from kallrec.db.models import Recording, Session
from kallrec.db.repository import NewRecording, metadata_json
from kallrec.errors import InvalidRequest, Unprocessable, UnsupportedMedia, missing
from kallrec.object_keys import import_staging_key
from kallrec.runtime import Runtime
from kallrec.tempfiles import new_temp_path

if TYPE_CHECKING:
    import numpy as np

    from kallrec.audio.decode import DecodedAudio

IMPORT_CHANNELS = ("mixed", "agent", "customer", "dual")


@dataclass(frozen=True)
class ImportRequest:
    source: Path
    hint: str | None
    channel: str = "mixed"
    session_id: str | None = None
    metadata: dict[str, str | int | float | bool] | None = None


def _tracks(decoded: DecodedAudio, channel: str) -> list[tuple[str, np.ndarray]]:
    """The (channel, mono int16 samples) recordings a file becomes."""
    from kallrec.audio.mix import mix

    if channel == "dual":
        if decoded.channels != 2:
            raise Unprocessable(
                "channel 'dual' needs a stereo file (left = agent, right = customer); "
                f"this file has {decoded.channels} channel(s).",
                param="channel",
            )
        agent, customer = decoded.channel(0), decoded.channel(1)
        return [("mixed", mix([agent, customer])), ("agent", agent), ("customer", customer)]
    if decoded.channels == 1:
        return [(channel, decoded.channel(0))]
    return [(channel, mix([decoded.channel(i) for i in range(decoded.channels)]))]


async def import_audio(
    rt: Runtime, org_id: str, livemode: bool, request: ImportRequest
) -> list[Recording]:
    if request.channel not in IMPORT_CHANNELS:
        choices = ", ".join(IMPORT_CHANNELS)
        raise InvalidRequest(
            f"Invalid channel: {request.channel!r}. Expected one of {choices}.", param="channel"
        )
    session = None
    if request.session_id:
        session = await anyio.to_thread.run_sync(
            rt.repo.get_session, org_id, livemode, request.session_id
        )
        if session is None:
            raise missing("session", request.session_id, "session_id")
    # The audio stack is loaded with the first import: a worker that only serves never needs it.
    from kallrec.audio.decode import decode_file

    try:
        decoded = await anyio.to_thread.run_sync(
            lambda: decode_file(request.source, hint=request.hint)
        )
    except UnsupportedAudio as exc:
        raise UnsupportedMedia(str(exc), param="file") from None
    except InvalidAudio as exc:
        raise Unprocessable(str(exc), param="file") from None
    tracks = _tracks(decoded, request.channel)

    new_session = session is None
    if session is None:
        now = timeutil.now()
        session = Session(
            id=ids.new_id("sess"),
            org_id=org_id,
            livemode=livemode,
            mode="bidirectional_translation",
            source_language=None,
            target_language=None,
            provider=None,
            status="ended",
            recording_enabled=True,
            recording_channels="dual" if request.channel == "dual" else "mixed",
            metadata=metadata_json(request.metadata),
            stream_token=None,
            stream_token_expires_at=None,
            created_at=now,
            started_at=now - decoded.duration,
            ended_at=now,
        )

    staged: list[NewRecording] = []
    try:
        for channel, samples in tracks:
            rec_id = ids.new_id("rec")
            key = import_staging_key(rec_id)
            item = NewRecording(rec_id, channel, key)
            await stage_samples(rt, key, samples)
            staged.append(item)
        created = await anyio.to_thread.run_sync(
            lambda: rt.repo.create_imported_recordings(
                session, new_session=new_session, channels=staged
            )
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            for item in staged:
                if item.staging_key is not None:  # always set on an import (its staged PCM)
                    await rt.storage.delete(item.staging_key)
        raise
    rt.jobs_wakeup()
    recordings = []
    for rec_id in created:
        rec = await anyio.to_thread.run_sync(rt.repo.get_recording, org_id, livemode, rec_id)
        assert rec is not None
        recordings.append(rec)
    return recordings


async def stage_samples(rt: Runtime, key: str, samples: np.ndarray) -> None:
    """Stores 8 kHz mono samples as the input of a processing job."""
    import numpy as np

    path = await anyio.to_thread.run_sync(new_temp_path, rt.scratch, ".pcm")
    try:
        await anyio.to_thread.run_sync(np.ascontiguousarray(samples, dtype="<i2").tofile, path)
        await rt.storage.put_file(key, path)
    finally:
        await anyio.Path(path).unlink(missing_ok=True)
