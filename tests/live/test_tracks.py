"""Tracks place audio on the session's timeline: gaps are silence, late chunks land, repeats
don't double, the client's clock origin is the session's start, and long jumps are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kallrec.audio.mulaw import mulaw_decode, mulaw_encode
from kallrec.live.messages import StreamError
from kallrec.live.timeline import MAX_SPAN_MS, RESERVE_MS, TIMELINE_FILE
from kallrec.live.tracks import SessionTracks, finished_tracks

EPOCH_MS = 1_764_000_000_000


def chunk(value: int, ms: int = 20) -> bytes:
    return mulaw_encode(np.full(8 * ms, value, dtype=np.int16))


def level(value: int) -> int:
    return int(mulaw_decode(chunk(value, 1))[0])


def read(directory: Path) -> dict[str, np.ndarray]:
    """Every speaker's finished track, whole (the blocks put back together)."""
    tracks = finished_tracks(directory)
    if tracks is None:
        return {}
    parts: dict[str, list[np.ndarray]] = {s: [] for s in tracks.speakers}
    for block in tracks.blocks(block_samples=1000):  # small blocks: the seams are tested too
        for speaker, samples in block.items():
            parts[speaker].append(samples)
    return {speaker: np.concatenate(p) for speaker, p in parts.items()}


def refused(tracks: SessionTracks, speaker: str, timestamp_ms: int, **kw: int) -> str:
    with pytest.raises(StreamError) as caught:
        tracks.write(speaker, timestamp_ms, chunk(1000), **kw)
    assert caught.value.code == "timestamp_out_of_range"
    return caught.value.message


def test_gap_becomes_silence_and_late_chunk_lands_in_place(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("agent", 100, chunk(3000))  # 20..100 ms never arrive: silence
    tracks.write("agent", 20, chunk(2000))  # arrives late, belongs at 20 ms
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 120 * 8
    assert set(agent[: 20 * 8]) == {level(1000)}
    assert set(agent[20 * 8 : 40 * 8]) == {level(2000)}
    assert set(agent[40 * 8 : 100 * 8]) == {0}
    assert set(agent[100 * 8 :]) == {level(3000)}


def test_duplicate_chunk_overwrites_instead_of_doubling(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("customer", 40, chunk(1000))
    tracks.write("customer", 40, chunk(1000))
    tracks.close()
    customer = read(tmp_path / "s")["customer"]
    assert len(customer) == 20 * 8
    assert set(customer) == {level(1000)}


@pytest.mark.parametrize("first_ms", [0, 30_000, EPOCH_MS])
def test_the_timeline_starts_at_the_first_chunk_whatever_the_clock(
    tmp_path: Path, first_ms: int
) -> None:
    tracks = SessionTracks(tmp_path / "s")
    for i in range(100):  # 2 s
        tracks.write("agent", first_ms + i * 20, chunk(1000))
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 2 * 8000  # no leading silence for a clock that did not start at 0
    assert set(agent) == {level(1000)}


def test_both_speakers_share_one_origin(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", EPOCH_MS, chunk(1000))
    tracks.write("customer", EPOCH_MS + 200, chunk(2000))
    tracks.close()
    both = read(tmp_path / "s")
    assert len(both["agent"]) == len(both["customer"]) == 220 * 8
    assert set(both["agent"][: 20 * 8]) == {level(1000)}
    assert set(both["agent"][20 * 8 :]) == {0}
    assert set(both["customer"][: 200 * 8]) == {0}
    assert set(both["customer"][200 * 8 :]) == {level(2000)}


def test_reopening_continues_the_same_tracks_on_the_same_origin(tmp_path: Path) -> None:
    first = SessionTracks(tmp_path / "s")
    first.write("agent", EPOCH_MS, chunk(1000))
    first.close()
    second = SessionTracks(tmp_path / "s")  # a reconnect, a restart, or another process
    second.write("agent", EPOCH_MS + 20, chunk(2000))
    second.sync()
    second.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 40 * 8 and agent[0] == level(1000) and agent[-1] == level(2000)


def test_the_origin_is_on_disk_before_the_first_sample(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 30_000, chunk(1000))
    stored = json.loads((tmp_path / "s" / TIMELINE_FILE).read_text())
    assert stored == {"base_ms": 30_000 - RESERVE_MS, "start_ms": 30_000}
    tracks.close()


def test_a_chunk_slightly_before_the_start_moves_the_start_back(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 30_000, chunk(1000))
    tracks.write("customer", 20_000, chunk(2000))  # out of order, 10 s before: accepted
    tracks.close()
    both = read(tmp_path / "s")
    assert len(both["agent"]) == (10_000 + 20) * 8
    assert set(both["customer"][: 20 * 8]) == {level(2000)}
    assert set(both["agent"][-20 * 8 :]) == {level(1000)}
    assert set(both["agent"][: 10_000 * 8]) == {0}
    reopened = SessionTracks(tmp_path / "s")  # the moved start is kept
    assert reopened.timeline.origin is not None and reopened.timeline.origin.start_ms == 20_000


def test_a_chunk_further_back_is_refused_and_not_written(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 30_000, chunk(1000))
    message = refused(tracks, "customer", 19_999)
    assert "10000 ms before" in message
    tracks.close()
    assert set(read(tmp_path / "s")) == {"agent"}
    assert len(read(tmp_path / "s")["agent"]) == 20 * 8


def test_the_start_moves_back_at_most_the_reserve_in_all(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    start = EPOCH_MS
    tracks.write("agent", start, chunk(1000))
    for _ in range(RESERVE_MS // 10_000):
        start -= 10_000
        tracks.write("agent", start, chunk(1000))
    refused(tracks, "agent", start - 1)
    tracks.close()
    assert len(read(tmp_path / "s")["agent"]) == (RESERVE_MS + 20) * 8


def test_a_long_jump_past_the_furthest_audio_is_refused_and_not_written(
    tmp_path: Path,
) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("customer", 0, chunk(1000))
    for speaker in ("agent", "customer"):  # the attack: one tiny chunk two hours on
        message = refused(tracks, speaker, 7_200_000)
        assert "after the furthest audio" in message
    tracks.close()
    both = read(tmp_path / "s")
    assert len(both["agent"]) == len(both["customer"]) == 20 * 8


def test_a_jump_of_up_to_the_limit_is_accepted_from_either_speakers_audio(
    tmp_path: Path,
) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000, ms=1000))  # agent's audio reaches 1 s
    tracks.write("customer", 61_000, chunk(2000))  # 60 s after it: accepted
    tracks.write("agent", 121_020, chunk(1000))  # 60 s after the customer's
    refused(tracks, "customer", 181_040 + 1)
    tracks.close()
    assert len(read(tmp_path / "s")["agent"]) == 121_040 * 8


def test_the_jump_limit_is_a_setting(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    refused(tracks, "agent", 30_021, max_jump_ms=30_000)
    tracks.write("agent", 30_020, chunk(1000), max_jump_ms=30_000)
    tracks.close()


def test_streaming_faster_than_real_time_is_fine(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    for i in range(3_000):  # ten minutes of 200 ms chunks, written as fast as possible
        tracks.write("agent", i * 200, chunk(1000, ms=200))
    tracks.close()
    assert len(read(tmp_path / "s")["agent"]) == 600 * 8000


def test_a_session_is_at_most_twelve_hours_long(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    last = 0
    while last + 60_000 <= MAX_SPAN_MS - 20:  # walked there a minute at a time
        last += 60_000
        tracks.write("agent", last, chunk(1000))
    assert "longer than 12 hours" in refused(tracks, "agent", MAX_SPAN_MS - 10)
    tracks.close()


def test_another_process_moving_the_start_or_the_end_is_seen_before_refusing(
    tmp_path: Path,
) -> None:
    one, two = SessionTracks(tmp_path / "s"), SessionTracks(tmp_path / "s")  # two workers
    one.write("agent", 30_000, chunk(1000))
    two.write("customer", 22_000, chunk(1000))  # adopts one's origin, moves the start back
    one.write("agent", 15_000, chunk(1000))  # 7 s before the start two set
    two.write("customer", 30_020 + 60_000, chunk(1000))  # a minute after one's furthest audio
    one.close()
    two.close()
    tracks = finished_tracks(tmp_path / "s")
    assert tracks is not None and tracks.samples == (90_040 - 15_000) * 8


def test_tracks_written_before_timelines_existed_are_read_from_zero(tmp_path: Path) -> None:
    legacy = tmp_path / "s"
    legacy.mkdir()
    samples = np.full(160, 1234, dtype="<i2")
    with (legacy / "agent.pcm").open("wb") as fh:  # the old layout: absolute timestamps
        fh.seek(100 * 16)
        fh.write(samples.tobytes())
    tracks = SessionTracks(legacy)  # a session in flight during the upgrade
    tracks.write("agent", 200, chunk(1000))
    tracks.close()
    agent = read(legacy)["agent"]
    assert len(agent) == 220 * 8
    assert set(agent[800:960]) == {1234} and set(agent[:800]) == {0}


def test_no_audio_means_no_tracks(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, b"")  # an empty chunk places nothing
    tracks.close()
    assert finished_tracks(tmp_path / "s") is None
    assert finished_tracks(tmp_path / "never") is None


# -- muted chunks (the older protocol's control: mute) -------------------------------------------


def test_a_muted_chunk_is_silence_and_keeps_the_timeline(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("agent", 20, chunk(2000), muted=True)
    tracks.write("agent", 40, chunk(3000))
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 60 * 8
    assert set(agent[: 20 * 8]) == {level(1000)}
    assert set(agent[20 * 8 : 40 * 8]) == {0}
    assert set(agent[40 * 8 :]) == {level(3000)}


def test_a_call_that_ends_muted_lasts_as_long_as_it_did(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("customer", 20, chunk(2000, ms=500), muted=True)
    tracks.close()
    both = read(tmp_path / "s")
    assert len(both["agent"]) == len(both["customer"]) == 520 * 8
    assert set(both["customer"]) == {0}


def test_a_muted_duplicate_keeps_the_audio_already_received(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000, ms=100))
    tracks.write("agent", 40, chunk(2000), muted=True)  # resent while muted
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 100 * 8 and set(agent) == {level(1000)}


def test_unmuting_after_a_mute_longer_than_the_jump_limit_is_no_jump(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    for i in range(1, 11):  # ten seconds muted, one second at a time
        tracks.write("agent", i * 1000, chunk(0, ms=1000), muted=True, max_jump_ms=5000)
    tracks.write("agent", 11_000, chunk(3000), max_jump_ms=5000)
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 11_020 * 8 and agent[-1] == level(3000)


def test_a_muted_chunk_is_held_to_the_jump_limit(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    with pytest.raises(StreamError) as caught:
        tracks.write("agent", 7_200_000, chunk(1000), muted=True)
    assert caught.value.code == "timestamp_out_of_range"
    tracks.close()
    assert len(read(tmp_path / "s")["agent"]) == 20 * 8


def test_without_fallocate_a_muted_chunk_still_writes_over_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr("os.posix_fallocate", unsupported)
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000, ms=100))
    tracks.write("agent", 60, chunk(2000, ms=100), muted=True)  # half over audio, half past it
    tracks.close()
    agent = read(tmp_path / "s")["agent"]
    assert len(agent) == 160 * 8
    assert set(agent[: 100 * 8]) == {level(1000)} and set(agent[100 * 8 :]) == {0}
