"""Turn a recording's MP3 into another format and sample rate (GET …/download).

Streams block by block (decode with libsndfile, resample with soxr's streaming resampler, encode),
so memory stays a few blocks whatever the call's length. Pure file-to-file functions: the caller
decides where the files live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import lameenc
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from kallrec.audio.encode import DEFAULT_QUALITY
from kallrec.audio.formats import CONTENT_TYPES, FORMATS, SAMPLE_RATES

__all__ = ["CONTENT_TYPES", "FORMATS", "SAMPLE_RATES", "convert_mp3"]


# The source is 8 kHz telephony audio: nothing above 4 kHz to preserve, so a resampled MP3 needs
# no more than this (valid for MPEG-1 and MPEG-2 Layer III alike).
RESAMPLED_MP3_KBPS = 64
_BLOCK = 1 << 16  # frames per read: ~8 s at 8 kHz


class _Sink(Protocol):
    def write(self, samples: npt.NDArray[np.int16]) -> None: ...
    def close(self) -> None: ...


class _SoundFileSink:
    def __init__(self, dest: Path, rate: int, fmt: str) -> None:
        kind = ("WAV", "PCM_16") if fmt == "wav" else ("OGG", "VORBIS")
        self.file = sf.SoundFile(dest, "w", rate, 1, format=kind[0], subtype=kind[1])

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        if len(samples):
            self.file.write(samples)

    def close(self) -> None:
        self.file.close()


class _Mp3Sink:
    def __init__(self, dest: Path, rate: int) -> None:
        self.out = dest.open("wb")
        self.encoder = lameenc.Encoder()
        self.encoder.set_channels(1)
        self.encoder.set_in_sample_rate(rate)
        self.encoder.set_out_sample_rate(rate)
        self.encoder.set_bit_rate(RESAMPLED_MP3_KBPS)
        self.encoder.set_quality(DEFAULT_QUALITY)

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        if len(samples):
            self.out.write(self.encoder.encode(np.ascontiguousarray(samples).tobytes()))

    def close(self) -> None:
        try:
            self.out.write(self.encoder.flush())
        finally:
            self.out.close()


def _sink(dest: Path, fmt: str, rate: int) -> _Sink:
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    if rate not in SAMPLE_RATES:
        raise ValueError(f"unsupported sample rate {rate!r}")
    return _Mp3Sink(dest, rate) if fmt == "mp3" else _SoundFileSink(dest, rate, fmt)


def convert_mp3(src: Path, dest: Path, fmt: str, rate: int) -> None:
    """Decodes the mono MP3 ``src`` and writes it to ``dest`` as ``fmt`` at ``rate`` Hz."""
    sink = _sink(dest, fmt, rate)
    try:
        with sf.SoundFile(src) as mp3:
            resampler = (
                None
                if mp3.samplerate == rate
                else soxr.ResampleStream(mp3.samplerate, rate, 1, dtype="int16", quality="HQ")
            )
            for block in mp3.blocks(_BLOCK, dtype="int16", always_2d=True):
                mono = np.ascontiguousarray(block[:, 0])
                sink.write(mono if resampler is None else resampler.resample_chunk(mono))
            if resampler is not None:
                sink.write(resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True))
    finally:
        sink.close()
