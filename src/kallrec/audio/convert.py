"""Turn a recording's MP3 into another format and sample rate (GET …/download).

Streams block by block (decode with libsndfile, resample with soxr's streaming resampler, encode),
so memory stays a few blocks whatever the call's length. ``converted_chunks`` yields the output
as it is made: written to a file for the conversion cache, or sent straight to a client when the
cache has no room (nothing on disk then). Both give the same bytes; a WAV is exactly
``sizes.wav_size`` long, as announced before the first byte.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Protocol

import lameenc
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from kallrec.audio import sizes
from kallrec.audio.encode import DEFAULT_QUALITY
from kallrec.audio.formats import CONTENT_TYPES, FORMATS, SAMPLE_RATES

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "SAMPLE_RATES",
    "OutputTooLarge",
    "convert_mp3",
    "converted_chunks",
]


# The source is 8 kHz telephony audio: nothing above 4 kHz to preserve, so a resampled MP3 needs
# no more than this (valid for MPEG-1 and MPEG-2 Layer III alike).
RESAMPLED_MP3_KBPS = sizes.MP3_BYTES_PER_SECOND * 8 // 1000
# Frames per read: 2 s at 8 kHz, so a 48 kHz WAV block is ~190 KB (what a stalled client of a
# streamed conversion holds, a few times over).
_BLOCK = 1 << 14


class OutputTooLarge(Exception):
    """The conversion outgrew the bytes it was allowed (its reservation in the cache)."""


class Source(Protocol):
    """A file-like MP3 (storage/thread_file.py): ``error`` holds what a read failed with, since
    libsndfile takes a failed read for the end of the file."""

    error: BaseException | None

    def read(self, count: int = -1) -> bytes: ...
    def seek(self, offset: int, whence: int = 0) -> int: ...
    def tell(self) -> int: ...


class _Encoder(Protocol):
    def encode(self, samples: npt.NDArray[np.int16]) -> bytes: ...
    def finish(self) -> bytes: ...


class _WavEncoder:
    """PCM after a header written first: exactly ``samples`` samples, padded with silence or
    cut if the decoder gives a few more or less than the arithmetic said."""

    def __init__(self, rate: int, samples: int) -> None:
        self.rate = rate
        self.left = samples
        self.header: bytes | None = sizes.wav_header(samples, rate)

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        head, self.header = self.header or b"", None
        kept = samples[: self.left]
        self.left -= len(kept)
        return head + kept.astype("<i2", copy=False).tobytes()

    def finish(self) -> bytes:
        head, self.header = self.header or b"", None
        pad, self.left = self.left, 0
        return head + bytes(2 * pad)


class _Collected:
    """A write-only file for libsndfile: keeps what it is given until taken. Ogg is written
    front to back; the only seeks libsndfile makes (to where it already is) are answered."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        target = {0: offset, 1: self.position + offset, 2: self.position + offset}[whence]
        if target != self.position:
            raise OSError("a streamed Ogg file cannot seek")
        return self.position

    def read(self, size: int = -1) -> bytes:
        return b""

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


class _OggEncoder:
    def __init__(self, rate: int) -> None:
        self.out = _Collected()
        self.file = sf.SoundFile(self.out, "w", rate, 1, format="OGG", subtype="VORBIS")

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        if len(samples):
            self.file.write(samples)
        return self.out.take()

    def finish(self) -> bytes:
        self.file.close()
        return self.out.take()


class _Mp3Encoder:
    def __init__(self, rate: int) -> None:
        self.encoder = lameenc.Encoder()
        self.encoder.set_channels(1)
        self.encoder.set_in_sample_rate(rate)
        self.encoder.set_out_sample_rate(rate)
        self.encoder.set_bit_rate(RESAMPLED_MP3_KBPS)
        self.encoder.set_quality(DEFAULT_QUALITY)

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        if not len(samples):
            return b""
        return bytes(self.encoder.encode(np.ascontiguousarray(samples).tobytes()))

    def finish(self) -> bytes:
        return bytes(self.encoder.flush())


def _encoder(fmt: str, rate: int, samples: int) -> _Encoder:
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unknown format {fmt!r}")
    if rate not in SAMPLE_RATES:
        raise ValueError(f"unsupported sample rate {rate!r}")
    if fmt == "wav":
        return _WavEncoder(rate, samples)
    return _Mp3Encoder(rate) if fmt == "mp3" else _OggEncoder(rate)


def _head_and_size(src: Path | Source) -> tuple[bytes, int]:
    if isinstance(src, Path):
        with src.open("rb") as fh:
            return fh.read(4), os.fstat(fh.fileno()).st_size
    head = src.read(4)
    size = src.seek(0, os.SEEK_END)
    src.seek(0)
    return head, size


def _check(src: Path | Source) -> None:
    if not isinstance(src, Path) and src.error is not None:
        raise src.error


def converted_chunks(src: Path | Source, fmt: str, rate: int) -> Generator[bytes, None, None]:
    """The bytes of the mono MP3 ``src`` as ``fmt`` at ``rate`` Hz, in order, a block at a time
    (empty pieces skipped). Close the generator to stop early. A ``Source`` whose reads failed
    raises their error, never a shortened conversion."""
    try:
        yield from _converted_chunks(src, fmt, rate)
    except Exception:
        _check(src)  # the read that failed, rather than what libsndfile made of it
        raise


def _converted_chunks(src: Path | Source, fmt: str, rate: int) -> Generator[bytes, None, None]:
    head, size = _head_and_size(src)
    _check(src)
    with sf.SoundFile(src) as mp3:
        exact = sizes.cbr_samples(head, size)
        samples = mp3.frames if exact is None else exact
        out_samples = sizes.resampled_samples(samples, mp3.samplerate, rate)
        encoder = _encoder(fmt, rate, out_samples)
        resampler = (
            None
            if mp3.samplerate == rate
            else soxr.ResampleStream(mp3.samplerate, rate, 1, dtype="int16", quality="HQ")
        )
        try:
            for block in mp3.blocks(_BLOCK, dtype="int16", always_2d=True):
                _check(src)
                mono = np.ascontiguousarray(block[:, 0])
                if resampler is not None:
                    mono = resampler.resample_chunk(mono)
                if data := encoder.encode(mono):
                    yield data
            _check(src)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
                if data := encoder.encode(tail):
                    yield data
        finally:
            last = encoder.finish()  # also closes libsndfile's encoder when stopped early
        if last:
            yield last


def convert_mp3(
    src: Path | Source, dest: Path, fmt: str, rate: int, *, max_bytes: int | None = None
) -> int:
    """Writes ``src`` converted to ``dest``; returns its size. Raises OutputTooLarge (leaving
    ``dest`` partial: the caller's scratch) as soon as it would pass ``max_bytes``."""
    written = 0
    chunks = converted_chunks(src, fmt, rate)
    try:
        with dest.open("wb") as out:
            for data in chunks:
                written += len(data)
                if max_bytes is not None and written > max_bytes:
                    raise OutputTooLarge(f"{fmt} at {rate} Hz passed {max_bytes} bytes")
                out.write(data)
    finally:
        chunks.close()
    return written
