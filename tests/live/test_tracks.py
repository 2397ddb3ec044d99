"""Tracks place audio by timestamp: gaps are silence, late chunks land, repeats don't double."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kallrec.audio.mulaw import mulaw_decode, mulaw_encode
from kallrec.live.finalize import session_channels
from kallrec.live.tracks import SessionTracks, read_tracks


def chunk(value: int, ms: int = 20) -> bytes:
    return mulaw_encode(np.full(8 * ms, value, dtype=np.int16))


def level(value: int) -> int:
    return int(mulaw_decode(chunk(value, 1))[0])


def test_gap_becomes_silence_and_late_chunk_lands_in_place(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("agent", 100, chunk(3000))  # 20..100 ms never arrive: silence
    tracks.write("agent", 20, chunk(2000))  # arrives late, belongs at 20 ms
    tracks.close()
    agent = read_tracks(tmp_path / "s")["agent"]
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
    customer = read_tracks(tmp_path / "s")["customer"]
    assert len(customer) == 60 * 8
    assert set(customer[40 * 8 :]) == {level(1000)}


def test_reopening_continues_the_same_tracks(tmp_path: Path) -> None:
    first = SessionTracks(tmp_path / "s")
    first.write("agent", 0, chunk(1000))
    first.close()
    second = SessionTracks(tmp_path / "s")  # a reconnect, or another process
    second.write("agent", 20, chunk(2000))
    second.sync()
    second.close()
    agent = read_tracks(tmp_path / "s")["agent"]
    assert len(agent) == 40 * 8 and agent[0] == level(1000) and agent[-1] == level(2000)


def test_tracks_are_padded_to_the_same_length(tmp_path: Path) -> None:
    tracks = SessionTracks(tmp_path / "s")
    tracks.write("agent", 0, chunk(1000))
    tracks.write("customer", 200, chunk(1000))
    tracks.close()
    both = read_tracks(tmp_path / "s")
    assert len(both["agent"]) == len(both["customer"]) == 220 * 8


def test_session_channels_for_mixed_and_dual() -> None:
    agent = np.full(100, 1000, dtype=np.int16)
    customer = np.full(100, 500, dtype=np.int16)
    mixed = session_channels({"agent": agent, "customer": customer}, "mixed")
    assert [c for c, _ in mixed] == ["mixed"]
    assert set(mixed[0][1]) == {1500}
    dual = session_channels({"agent": agent}, "dual")
    assert [c for c, _ in dual] == ["mixed", "agent", "customer"]
    assert set(dual[2][1]) == {0}  # a silent customer still gets a (silent) recording
    assert session_channels({}, "dual") == []
