"""How long a converted recording is, before any audio is decoded: pure arithmetic.

A stored recording is a constant-bitrate MP3 with no tags and no Xing header (encode.py): every
frame has the same length and holds the same number of samples, so the first frame's header and
the file's size give the exact number of decoded samples (what libsndfile/mpg123 returns too).
From it follow the exact size of a WAV conversion (header + 2 bytes a sample: a streamed WAV gets
its Content-Length up front) and an upper bound for the compressed formats (the room the
conversion cache reserves before converting).
"""

from __future__ import annotations

import math
import struct

from kallrec.audio.mpeg import parse_frame_header

WAV_HEADER_BYTES = 44
# RIFF sizes are 32-bit: a longer WAV (over ~12 h at 48 kHz) says "as long as it goes", as
# streaming writers do.
_RIFF_MAX = 0xFFFF_FFFF
# Resampled MP3s are CBR at this rate (convert.py); a few frames more for LAME's delay and flush.
MP3_BYTES_PER_SECOND = 64_000 // 8
MP3_SLACK_BYTES = 16 * 1024
# Vorbis (libsndfile's default quality) of 8 kHz telephony audio measured 0.2-7.1 KB/s for
# silence, tones and white noise at every rate: twice the worst, plus the codebook headers.
OGG_BYTES_PER_SECOND = 16_000
OGG_SLACK_BYTES = 64 * 1024


def cbr_samples(head: bytes, size: int) -> int | None:
    """Samples in a headerless CBR MP3 of ``size`` bytes starting with ``head`` (≥ 4 bytes);
    None if it is not one (then only decoding it tells)."""
    header = parse_frame_header(head[:4])
    if header is None or header.length <= 0 or size % header.length:
        return None
    return size // header.length * header.samples


def resampled_samples(samples: int, from_rate: int, to_rate: int) -> int:
    """What a resampler makes of ``samples`` (soxr: the exact ratio, rounded to nearest)."""
    return (samples * to_rate + from_rate // 2) // from_rate


def wav_header(samples: int, rate: int) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV with ``samples`` samples."""
    data = 2 * samples
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(36 + data, _RIFF_MAX),
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size
        1,  # PCM
        1,  # mono
        rate,
        rate * 2,  # bytes per second
        2,  # block align
        16,  # bits per sample
        b"data",
        min(data, _RIFF_MAX),
    )


def wav_size(samples: int) -> int:
    return WAV_HEADER_BYTES + 2 * samples


def converted_size_bound(fmt: str, rate: int, samples: int) -> int:
    """The most bytes a conversion to ``fmt`` at ``rate`` of ``samples`` output samples takes
    (exact for WAV)."""
    if fmt == "wav":
        return wav_size(samples)
    seconds = samples / rate
    if fmt == "mp3":
        return math.ceil(seconds * MP3_BYTES_PER_SECOND) + MP3_SLACK_BYTES
    if fmt == "ogg":
        return math.ceil(seconds * OGG_BYTES_PER_SECOND) + OGG_SLACK_BYTES
    raise ValueError(f"unknown format {fmt!r}")
