from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from kallrec.live.tracks import SessionTracks, finished_tracks
from kallrec.metrics import SipMetrics
from kallrec.sip.media import CallAudio, PortPool, RtpStream

SECOND = b"\xff" * 8000  # one second of μ-law silence-level samples


def test_a_hold_longer_than_the_jump_limit_is_kept_as_silence_of_its_length(
    tmp_path: Path,
) -> None:
    tracks = SessionTracks(tmp_path / "s")
    audio = CallAudio(tracks, max_jump_ms=60_000, metrics=SipMetrics())
    audio.write("customer", 1_000_000, SECOND)
    audio.write("customer", 1_000_000 + 150_000, SECOND)  # 149 s of hold in between
    tracks.sync()
    finished = finished_tracks(tmp_path / "s")
    assert finished is not None
    assert finished.samples == 151 * 8000


def test_audio_the_track_writer_refuses_is_dropped_and_counted(tmp_path: Path) -> None:
    metrics = SipMetrics()
    tracks = SessionTracks(tmp_path / "s")
    audio = CallAudio(tracks, max_jump_ms=60_000, metrics=metrics)
    audio.write("customer", 1_000_000, SECOND)
    audio.write("customer", 1_000_000 - 600_000, SECOND)  # 10 minutes before the start
    assert metrics.rtp_dropped.labels("range")._value.get() == 1


async def test_a_stream_records_pcma_from_its_first_source_only(tmp_path: Path) -> None:
    metrics = SipMetrics()
    tracks = SessionTracks(tmp_path / "s")
    audio = CallAudio(tracks, max_jump_ms=60_000, metrics=metrics)
    pool = PortPool(47000, 47999, "127.0.0.1")
    stream = await pool.open(lambda: RtpStream("agent", {8: "PCMA"}, audio, metrics, True))
    header = struct.Struct("!BBHII")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
    ):
        for seq in range(50):
            caller.sendto(header.pack(0x80, 8, seq, seq * 160, 7) + b"\xd5" * 160,
                          ("127.0.0.1", stream.port))  # fmt: skip
            stranger.sendto(header.pack(0x80, 8, seq, seq * 160, 9) + b"\x2a" * 160,
                            ("127.0.0.1", stream.port))  # fmt: skip
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.3)
    stream.close()
    tracks.sync()
    assert metrics.rtp_packets._value.get() == 50
    assert metrics.rtp_dropped.labels("source")._value.get() == 50
    finished = finished_tracks(tmp_path / "s")
    assert finished is not None and finished.speakers == ("agent",)
    assert finished.samples == 50 * 160
    # A-law 0xd5 is the smallest positive step: near silence, not the stranger's loud 0x2a.
    block = next(finished.blocks())["agent"]
    assert abs(int(block.max())) < 64
