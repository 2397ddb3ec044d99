"""MP3 encoding of 8 kHz mono recordings with LAME (lameenc).

At an 8 kHz input LAME writes MPEG-2.5 Layer III; with a fixed bitrate every frame has the same
size (576 samples, 72 × bitrate / 8000 bytes: 288 bytes at 32 kbps) and there is no Xing/Info
header, so byte offsets map linearly to time, which keeps Range-based seeking in players exact.

Default quality 5 (LAME's algorithm quality, 0 = best/slowest … 9 = worst/fastest), measured on
a 10-minute 8 kHz signal on one core of the reference box, side by side with the ffmpeg CLI:
q=2 ~640× realtime, q=5 ~1,950×, q=7 ~2,600×. q=2 is slower than ffmpeg itself (ffmpeg's
libmp3lame defaults to q=3); q=5 is LAME's own default trade-off and at 32 kbps telephony speech
its output is within measurement noise of q=2, while keeping the product's speed target.

lameenc releases the GIL inside ``encode``, so several recordings encode in parallel threads;
nothing here holds a Python-level lock.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import lameenc
import numpy as np
import numpy.typing as npt

from kallrec.audio.decode import TARGET_RATE

__all__ = [
    "ALLOWED_BITRATES",
    "DEFAULT_BITRATE",
    "DEFAULT_QUALITY",
    "encode_mp3",
    "encode_mp3_to_file",
]

# MPEG-2.5 Layer III bitrates that make sense for 8 kHz speech; LAME silently caps higher values
# at 64 kbps for this sample rate, so they are refused rather than misreported.
ALLOWED_BITRATES = (16, 24, 32, 48, 64)
DEFAULT_BITRATE = 32
DEFAULT_QUALITY = 5

# Speed is flat from ~9k samples per call upwards (measured); 112 MP3 frames ≈ 8 s per call keeps
# the per-call output (~32 KB at 32 kbps) a good write size.
_BLOCK_SAMPLES = 576 * 112


def encode_mp3(
    samples: npt.NDArray[np.int16],
    *,
    bitrate_kbps: int = DEFAULT_BITRATE,
    quality: int = DEFAULT_QUALITY,
) -> bytes:
    """Encode 1-D int16 mono samples at 8 kHz to a CBR MP3 (MPEG-2.5 Layer III)."""
    buffer = io.BytesIO()
    encode_mp3_to_file(samples, buffer, bitrate_kbps=bitrate_kbps, quality=quality)
    return buffer.getvalue()


def encode_mp3_to_file(
    samples: npt.NDArray[np.int16],
    dest: BinaryIO,
    *,
    bitrate_kbps: int = DEFAULT_BITRATE,
    quality: int = DEFAULT_QUALITY,
) -> int:
    """Encode like ``encode_mp3`` but write to ``dest`` block by block; return the bytes written."""
    encoder = _encoder(bitrate_kbps, quality)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError("encode_mp3() takes 1-D int16 mono samples")
    # LAME reads native-endian int16; the array is converted once if it is byte-swapped.
    samples = np.ascontiguousarray(samples, dtype=np.dtype(np.int16).newbyteorder("="))
    written = 0
    for start in range(0, len(samples), _BLOCK_SAMPLES):
        written += _write(dest, encoder.encode(samples[start : start + _BLOCK_SAMPLES].tobytes()))
    written += _write(dest, encoder.flush())
    return written


def _encoder(bitrate_kbps: int, quality: int) -> lameenc.Encoder:
    if bitrate_kbps not in ALLOWED_BITRATES:
        allowed = ", ".join(str(b) for b in ALLOWED_BITRATES)
        raise ValueError(f"MP3 bitrate must be one of {allowed} kbps, not {bitrate_kbps!r}")
    if not 0 <= quality <= 9:
        raise ValueError(f"LAME quality must be between 0 (best) and 9 (fastest), not {quality!r}")
    encoder = lameenc.Encoder()
    encoder.set_channels(1)
    encoder.set_in_sample_rate(TARGET_RATE)
    encoder.set_out_sample_rate(TARGET_RATE)
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_quality(quality)
    return encoder


def _write(dest: BinaryIO, data: bytes | bytearray) -> int:
    if data:
        dest.write(data)
    return len(data)
