"""MP3 encoding speed: kallrec (lameenc, in process) against the ffmpeg command line.

Same input (10 minutes of speech-like 8 kHz mono), same bitrate (32 kbps), best of N runs each,
interleaved so that both see the same machine. kallrec's time includes reading the WAV file, as
ffmpeg's does (ffmpeg's also includes starting its process, ~30 ms, which is part of what a user
of the command line pays).
"""

from __future__ import annotations

import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data import RATE, speech_like, write_wav
from kallrec.audio.encode import DEFAULT_QUALITY, encode_mp3

SECONDS = 600
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


@dataclass
class EncodingReport:
    seconds_of_audio: int
    runs: int
    ffmpeg_best: float
    kallrec_best: float
    kallrec_encode_only_best: float
    ffmpeg_bytes: int
    kallrec_bytes: int
    quality: int

    @property
    def ratio(self) -> float:
        return self.ffmpeg_best / self.kallrec_best


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def run(workdir: Path, runs: int = 5) -> EncodingReport:
    wav = workdir / "encode-10min.wav"
    if not wav.exists():
        write_wav(wav, speech_like(SECONDS, seed=3))
    out = workdir / "encode-ffmpeg.mp3"
    ffmpeg_cmd = [*FFMPEG, "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "32k", str(out)]
    ffmpeg_times, kallrec_times, encode_times = [], [], []
    mp3 = b""
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(ffmpeg_cmd, check=True)
        ffmpeg_times.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        samples = _read_wav(wav)
        t1 = time.perf_counter()
        mp3 = encode_mp3(samples, bitrate_kbps=32)
        t2 = time.perf_counter()
        kallrec_times.append(t2 - t0)
        encode_times.append(t2 - t1)
    assert RATE == 8000
    return EncodingReport(
        seconds_of_audio=SECONDS,
        runs=runs,
        ffmpeg_best=min(ffmpeg_times),
        kallrec_best=min(kallrec_times),
        kallrec_encode_only_best=min(encode_times),
        ffmpeg_bytes=out.stat().st_size,
        kallrec_bytes=len(mp3),
        quality=DEFAULT_QUALITY,
    )
