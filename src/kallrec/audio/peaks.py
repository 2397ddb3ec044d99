"""Waveform peaks: the loudest sample of each stretch of a call, as small integers.

A player draws the whole call from them before it downloads any audio. The number of peaks is
bounded (``MAX_PEAKS``) whatever the length of the call, so the JSON stays a few kilobytes: a
two-minute call gets ``PEAKS_PER_SECOND`` per second, a two-hour one one per 3.6 s, which is still
finer than any screen draws a two-hour call.

Values are 0..255 on a linear scale of full scale (32767 → 255), not normalized to the call's
own loudest sample: a quiet call looks quiet. A player may scale them up to fill its height.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kallrec.audio.peak_scale import MAX_PEAKS, PEAKS_PER_SECOND, SCALE

# Samples read from a PCM file at a time: the memory of one block, whatever the call's length.
_BLOCK_SAMPLES = 1 << 20


def peak_count(samples: int, rate: int) -> int:
    """How many peaks a call of ``samples`` at ``rate`` gets (at least one, at most MAX_PEAKS)."""
    return max(1, min(MAX_PEAKS, math.ceil(samples / rate * PEAKS_PER_SECOND)))


def peaks_of(samples: npt.NDArray[np.int16], rate: int) -> list[int]:
    """The peaks of mono int16 ``samples``."""
    return _Accumulator(len(samples), rate).add(samples).result()


def peaks_of_pcm_file(path: Path, rate: int) -> list[int]:
    """The peaks of a raw little-endian 16-bit mono PCM file, read block by block."""
    total = path.stat().st_size // 2
    acc = _Accumulator(total, rate)
    with path.open("rb") as fh:
        while True:
            block = np.fromfile(fh, dtype="<i2", count=_BLOCK_SAMPLES)
            if not len(block):
                break
            acc.add(block)
    return acc.result()


class _Accumulator:
    """Peaks of a stream of blocks whose total length is known in advance: sample ``i`` belongs
    to bucket ``i * count // total``, so blocks need not align with buckets."""

    def __init__(self, total: int, rate: int) -> None:
        self.total = max(total, 1)
        self.count = peak_count(total, rate)
        self.peaks = np.zeros(self.count, dtype=np.int32)
        # Where each bucket starts: the first i with i * count // total == b.
        b = np.arange(self.count, dtype=np.int64)
        self.starts = (b * self.total + self.count - 1) // self.count
        self.seen = 0

    def add(self, block: npt.NDArray[np.int16]) -> _Accumulator:
        n = len(block)
        if n:
            # The magnitude of -32768 does not fit an int16: widen before abs.
            magnitude = np.abs(block.astype(np.int32))
            first = min(self.seen * self.count // self.total, self.count - 1)
            inside = self.starts[(self.starts > self.seen) & (self.starts < self.seen + n)]
            offsets = np.concatenate(([0], inside - self.seen))
            maxima = np.maximum.reduceat(magnitude, offsets)
            span = slice(first, first + len(maxima))
            self.peaks[span] = np.maximum(self.peaks[span], maxima)
            self.seen += n
        return self

    def result(self) -> list[int]:
        scaled = np.minimum((self.peaks * SCALE + 16383) // 32767, SCALE)
        return [int(v) for v in scaled]
