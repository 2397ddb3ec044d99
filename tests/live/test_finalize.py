"""Finishing a session: which recordings its tracks become, and that making them costs the
memory of a few blocks, not of the call."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np

from kallrec.audio.encode import encode_pcm_file
from kallrec.audio.mulaw import mulaw_decode, mulaw_encode
from kallrec.live.finalize import session_channels, write_channel
from kallrec.live.tracks import SessionTracks, finished_tracks

MiB = 1 << 20


def chunk(value: int, ms: int = 100) -> bytes:
    return mulaw_encode(np.full(8 * ms, value, dtype=np.int16))


def level(value: int) -> int:
    return int(mulaw_decode(chunk(value, 1))[0])


def pcm(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i2")


def test_session_channels_for_mixed_and_dual(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.close()
    finished = finished_tracks(tmp_path / "s")
    assert session_channels(finished, "mixed") == ["mixed"]
    assert session_channels(finished, "dual") == ["mixed", "agent", "customer"]
    # Without audio: one mixed recording, which fails (no_audio) rather than nothing at all.
    assert session_channels(None, "dual") == ["mixed"]


def test_mixed_is_the_sum_and_a_silent_speaker_gets_a_silent_track(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 5_000, chunk(1000, ms=200))
    tracks.write("agent", 5_200, chunk(2000, ms=200))
    tracks.close()
    finished = finished_tracks(tmp_path / "s")
    assert finished is not None
    for channel in ("mixed", "agent", "customer"):
        write_channel(finished, channel, tmp_path / f"{channel}.pcm")
    agent, mixed = pcm(tmp_path / "agent.pcm"), pcm(tmp_path / "mixed.pcm")
    customer = pcm(tmp_path / "customer.pcm")
    assert len(agent) == len(mixed) == len(customer) == 400 * 8
    assert (mixed == agent).all() and not customer.any()
    assert set(agent[:1600]) == {level(1000)} and set(agent[1600:]) == {level(2000)}


def test_both_speakers_are_summed_across_block_seams(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    for i in range(50):
        tracks.write("agent", i * 100, chunk(1000))
        tracks.write("customer", 2_000 + i * 100, chunk(500))
    tracks.close()
    finished = finished_tracks(tmp_path / "s")
    assert finished is not None and finished.samples == 7 * 8000
    write_channel(finished, "mixed", tmp_path / "mixed.pcm")
    mixed = pcm(tmp_path / "mixed.pcm")
    both = level(1000) + level(500)
    assert set(mixed[:16_000]) == {level(1000)}
    assert set(mixed[16_000:40_000]) == {both}
    assert set(mixed[40_000:]) == {level(500)}


def test_a_long_call_is_finished_and_encoded_in_bounded_memory(tmp_path: Path) -> None:
    # Thirty minutes per speaker (two 28.8 MB tracks), walked there a minute at a time.
    tracks = SessionTracks(tmp_path / "s")
    for minute in range(31):
        tracks.write("agent", minute * 60_000, chunk(3000))
        tracks.write("customer", minute * 60_000 + 30_000, chunk(-3000))
    tracks.close()
    finished = finished_tracks(tmp_path / "s")
    assert (
        finished is not None and finished.samples * 2 > 3 * 8 * MiB
    )  # each track thrice the bound

    tracemalloc.start()
    try:
        write_channel(finished, "mixed", tmp_path / "mixed.pcm")
        mixing_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        mp3 = io.BytesIO()
        _, samples = encode_pcm_file(tmp_path / "mixed.pcm", _Discard(mp3))  # type: ignore[arg-type]
        encoding_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert samples == finished.samples
    assert mixing_peak < 8 * MiB, mixing_peak
    assert encoding_peak < 8 * MiB, encoding_peak
    assert mp3.tell() > 0


class _Discard:
    """A destination that counts what it is given and keeps none of it."""

    def __init__(self, counter: io.BytesIO) -> None:
        self.counter = counter

    def write(self, data: bytes) -> int:
        self.counter.seek(self.counter.tell() + len(data))
        return len(data)
