"""Decode an uploaded recording to 16-bit PCM at 8 kHz.

The format is decided by the bytes, never by the name: WAV (RIFF/RIFX/RF64), AU and MP3 are
recognised by their magic numbers. Headerless μ-law has no magic at all (every byte is a valid
sample), so it is accepted only when the uploader says so through the filename or content type;
otherwise any file at all would "decode" as noise.

Everything is read and resampled in blocks into one preallocated int16 array, so peak memory is
about the size of the 8 kHz output (a 500 MB 48 kHz stereo WAV becomes ~83 MB), not of the input.
"""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from kallrec.audio.errors import InvalidAudio, UnsupportedAudio
from kallrec.audio.mpeg import StreamSummary, id3v2_size, parse_frame_header, walk_frames
from kallrec.audio.pcm import MAX_CHANNELS, PcmLayout, parse_au, parse_wav, raw_mulaw

__all__ = ["TARGET_RATE", "DecodedAudio", "decode_file", "is_raw_mulaw_hint"]

TARGET_RATE = 8000

# 1 MiB of 16-bit stereo per read: large enough that per-call overhead vanishes.
_BLOCK_FRAMES = 1 << 18

# How much less audio than its frames hold an MP3 may decode to before it is called damaged:
# gapless decoding drops the Info frame, encoder delay and padding (a few frames), and a
# decoder may skip a bad frame or two; anything more means mpg123 gave up part-way.
_MP3_TOLERATED_LOSS = 0.01
_MP3_TOLERATED_LOSS_FRAMES = 8

_RAW_MULAW_EXTENSIONS = frozenset({"ul", "ulaw", "mulaw"})
# audio/basic is μ-law by definition (RFC 2046); it only reaches this check without an AU header.
_RAW_MULAW_TYPES = frozenset({"audio/basic", "audio/x-mulaw", "audio/mulaw", "audio/pcmu"})

_UNRECOGNISED = (
    "The file is not a WAV, AU or MP3 recording (raw μ-law is accepted only when named "
    ".ul, .ulaw or .mulaw, or sent as audio/x-mulaw or audio/basic)."
)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no useful == or hash
class DecodedAudio:
    """Audio ready for mixing and encoding."""

    samples: npt.NDArray[np.int16]  # shape (frames, channels), C-contiguous, at TARGET_RATE

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 2:
            raise ValueError("DecodedAudio.samples must be an int16 array of (frames, channels)")

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / TARGET_RATE

    def channel(self, index: int) -> npt.NDArray[np.int16]:
        """One channel as a contiguous 1-D array (0 = left = agent, 1 = right = customer)."""
        return np.ascontiguousarray(self.samples[:, index])


def decode_file(path: str | os.PathLike[str], *, hint: str | None = None) -> DecodedAudio:
    """Decode the WAV, AU, MP3 or (with a hint) raw μ-law file at ``path``.

    ``hint`` is what the uploader told us: a filename, a content type, or both separated by
    whitespace or commas (e.g. ``"call.ul audio/basic"``). It is consulted only for headerless
    μ-law. Raises ``UnsupportedAudio`` or ``InvalidAudio``; never a libsndfile error.
    """
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            raise InvalidAudio("The file is empty.")
        f.seek(0)
        kind = _sniff(f.read(12))
        if kind is _Kind.MP3 and is_raw_mulaw_hint(hint) and not _mp3_frames_chain(f):
            # Near-silent μ-law bytes (0xFF, 0xFx, 0x7x…) can form one valid-looking MPEG frame
            # header by chance; a real MP3 has a second header where the first one says.
            kind = None
        if kind is _Kind.WAV:
            return _decode_pcm(f, parse_wav(f, size))
        if kind is _Kind.AU:
            return _decode_pcm(f, parse_au(f, size))
        if kind is _Kind.MP3:
            stream = walk_frames(f, _mp3_audio_start(f, size))
        elif is_raw_mulaw_hint(hint):
            return _decode_pcm(f, raw_mulaw(size))
        else:
            raise UnsupportedAudio(_UNRECOGNISED)
    return _decode_mp3(path, stream)


def is_raw_mulaw_hint(hint: str | None) -> bool:
    """Whether a filename and/or content type announces headerless 8 kHz μ-law."""
    if not hint:
        return False
    for token in re.split(r"[\s,;]+", hint.lower()):
        if token in _RAW_MULAW_TYPES:
            return True
        name = re.split(r"[/\\]", token)[-1]
        _stem, dot, extension = name.rpartition(".")
        if dot and extension in _RAW_MULAW_EXTENSIONS:
            return True
    return False


# ---- format detection -------------------------------------------------------------------------


class _Kind(enum.Enum):
    WAV = "wav"
    AU = "au"
    MP3 = "mp3"


def _sniff(head: bytes) -> _Kind | None:
    if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64"):
        # A RIFF file too short to show its form type is a WAV cut inside its header (the
        # parser reports it); a complete one of another form (AVI, WebP…) is not audio.
        return _Kind.WAV if len(head) < 12 or head[8:12] == b"WAVE" else None
    if head[:4] == b".snd":
        return _Kind.AU
    if id3v2_size(head) is not None or parse_frame_header(head) is not None:
        return _Kind.MP3
    return None


def _mp3_frames_chain(f: BinaryIO) -> bool:
    """Whether the file starts with an ID3 tag, or with two consecutive MPEG frame headers."""
    f.seek(0)
    head = f.read(10)
    if id3v2_size(head) is not None:
        return True
    first = parse_frame_header(head)
    if first is None:
        return False
    f.seek(first.length)
    return parse_frame_header(f.read(4)) is not None


def _mp3_audio_start(f: BinaryIO, size: int) -> int:
    """Offset of the first MPEG audio frame, after any ID3v2 tags (and their zero padding)."""
    pos = 0
    while True:
        f.seek(pos)
        tag_size = id3v2_size(f.read(10))
        if tag_size is None:
            break
        pos += tag_size
        if pos >= size:
            raise InvalidAudio("The MP3 file is truncated: it holds only a tag and no audio.")
    f.seek(pos)
    window = f.read(64 * 1024)
    start = len(window) - len(window.lstrip(b"\x00"))
    if parse_frame_header(window[start : start + 4]) is None:
        raise InvalidAudio("The MP3 file is corrupt: no MPEG audio frame follows its ID3 tag.")
    return pos + start


# ---- decoding ---------------------------------------------------------------------------------


def _decode_pcm(f: BinaryIO, layout: PcmLayout) -> DecodedAudio:
    def blocks() -> Iterator[npt.NDArray[np.float32]]:
        step = _BLOCK_FRAMES * layout.block_align
        f.seek(layout.data_offset)
        remaining = layout.data_size
        while remaining > 0:
            raw = f.read(min(step, remaining))
            usable = len(raw) - len(raw) % layout.block_align
            if usable == 0:
                break  # the file shrank while we read it
            remaining -= len(raw)
            yield layout.to_float(raw[:usable])

    samples = _resample_into_int16(blocks(), layout.sample_rate, layout.channels, layout.frames)
    if len(samples) == 0:
        raise InvalidAudio(f"The {layout.container} file contains no audio.")
    return DecodedAudio(samples)


def _decode_mp3(path: str | os.PathLike[str], stream: StreamSummary) -> DecodedAudio:
    corrupt = "The MP3 file is corrupt: its audio frames cannot be decoded."
    decoded = 0
    try:
        with sf.SoundFile(os.fspath(path)) as snd:
            if snd.format != "MP3" or not 1 <= snd.channels <= MAX_CHANNELS:
                raise InvalidAudio(corrupt)
            rate = snd.samplerate

            def blocks() -> Iterator[npt.NDArray[np.float32]]:
                nonlocal decoded
                while len(block := snd.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)):
                    decoded += len(block)
                    yield block

            samples = _resample_into_int16(blocks(), rate, snd.channels, stream.samples)
    # LibsndfileError is a RuntimeError; mpg123 failures surface as either.
    except RuntimeError as exc:
        raise InvalidAudio(corrupt) from exc
    if len(samples) == 0:
        raise InvalidAudio("The MP3 file is corrupt: it contains no decodable audio.")
    # mpg123 stops at the first stretch of garbage it cannot resync past, which would silently
    # cut the call short; the frame walk knows how much audio the file really holds.
    tolerated = stream.samples * _MP3_TOLERATED_LOSS + _MP3_TOLERATED_LOSS_FRAMES * 1152
    if decoded < stream.samples - tolerated:
        raise InvalidAudio(
            f"The MP3 file is corrupt: only {decoded / rate:.1f} of its "
            f"{stream.samples / rate:.1f} seconds of audio could be decoded."
        )
    return DecodedAudio(samples)


def _resample_into_int16(
    blocks: Iterator[npt.NDArray[np.float32]], rate: int, channels: int, frames_estimate: int
) -> npt.NDArray[np.int16]:
    """Resample float blocks of shape (n, channels) to TARGET_RATE and collect them as int16."""
    out = _Int16Writer(math.ceil(max(frames_estimate, 0) * TARGET_RATE / rate) + 16, channels)
    if rate == TARGET_RATE:
        for block in blocks:
            out.write(block)
        return out.result()
    # HQ is soxr's 20-bit-precision filter; VHQ (28-bit) buys nothing for 16-bit output.
    stream = soxr.ResampleStream(rate, TARGET_RATE, channels, dtype="float32", quality="HQ")
    for block in blocks:
        out.write(stream.resample_chunk(block))
    out.write(stream.resample_chunk(np.zeros((0, channels), np.float32), last=True))
    return out.result()


class _Int16Writer:
    """Appends float blocks to a preallocated int16 array; grows only if the estimate was short.

    np.empty does not touch memory, so an overestimate costs address space, not RAM.
    """

    # An absurd estimate (a corrupt header) must not reserve absurd address space up front.
    _MAX_INITIAL_FRAMES = TARGET_RATE * 3600 * 4

    def __init__(self, capacity: int, channels: int) -> None:
        self._buf = np.empty((min(capacity, self._MAX_INITIAL_FRAMES), channels), np.int16)
        self._n = 0

    def write(self, block: npt.NDArray[np.float32]) -> None:
        count = len(block)
        if count == 0:
            return
        if self._n + count > len(self._buf):
            frames = max(len(self._buf) * 3 // 2, self._n + count)
            grown = np.empty((frames, self._buf.shape[1]), np.int16)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        # Resampling can overshoot full scale slightly (Gibbs ringing): clip instead of wrapping.
        scaled = block * np.float32(32768.0)
        np.rint(scaled, out=scaled)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        self._buf[self._n : self._n + count] = scaled
        self._n += count

    def result(self) -> npt.NDArray[np.int16]:
        return self._buf[: self._n]
