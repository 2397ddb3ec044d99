"""Uncompressed audio in a container: locate the samples of a WAV or AU file, convert them.

The WAV parser is our own (a walk over the RIFF chunk list) rather than libsndfile's because we
need two answers libsndfile does not give: whether the file is truncated (the ``data`` chunk
declares more bytes than the file holds, which libsndfile silently accepts) and where exactly the
audio bytes are, so that a "streaming" WAV whose size field was never filled in (0 or 0xFFFFFFFF,
which libsndfile reads as zero frames) still decodes. Knowing the exact byte range also lets the
decoder read big files in blocks without libsndfile in the loop.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from kallrec.audio.errors import InvalidAudio, UnsupportedAudio
from kallrec.audio.mulaw import ALAW_TABLE, MULAW_TABLE

__all__ = ["MAX_CHANNELS", "PcmLayout", "SampleFormat", "parse_au", "parse_wav", "raw_mulaw"]

MAX_CHANNELS = 2
# Telephony starts at 8 kHz; anything far outside speech/music rates is a corrupt or exotic file.
MIN_RATE = 4_000
MAX_RATE = 384_000

# A data chunk size nobody filled in: the recorder was streaming and never seeked back.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class SampleFormat(enum.Enum):
    """How one sample is stored."""

    ULAW = "ulaw"
    ALAW = "alaw"
    U8 = "u8"
    S8 = "s8"
    S16 = "s16"
    S24 = "s24"
    S32 = "s32"
    F32 = "f32"
    F64 = "f64"

    @property
    def width(self) -> int:
        """Bytes per sample."""
        return _WIDTHS[self]


_WIDTHS = {
    SampleFormat.ULAW: 1,
    SampleFormat.ALAW: 1,
    SampleFormat.U8: 1,
    SampleFormat.S8: 1,
    SampleFormat.S16: 2,
    SampleFormat.S24: 3,
    SampleFormat.S32: 4,
    SampleFormat.F32: 4,
    SampleFormat.F64: 8,
}
_PCM_BY_WIDTH = {1: SampleFormat.U8, 2: SampleFormat.S16, 3: SampleFormat.S24, 4: SampleFormat.S32}

_MULAW_F32 = (MULAW_TABLE / 32768.0).astype(np.float32)
_ALAW_F32 = (ALAW_TABLE / 32768.0).astype(np.float32)


@dataclass(frozen=True)
class PcmLayout:
    """Where the audio bytes of a file are and how to read them."""

    container: str  # "WAV", "AU" or "raw μ-law": used in messages shown to the uploader
    sample_format: SampleFormat
    big_endian: bool
    channels: int
    sample_rate: int
    data_offset: int
    data_size: int  # usable bytes, already checked against the file size; a whole number of frames

    @property
    def block_align(self) -> int:
        return self.sample_format.width * self.channels

    @property
    def frames(self) -> int:
        return self.data_size // self.block_align

    def to_float(self, raw: bytes) -> npt.NDArray[np.float32]:
        """Convert whole frames of raw bytes to float32 in [-1, 1], shape (frames, channels)."""
        fmt = self.sample_format
        e = ">" if self.big_endian else "<"
        if fmt is SampleFormat.ULAW:
            out = _MULAW_F32[np.frombuffer(raw, np.uint8)]
        elif fmt is SampleFormat.ALAW:
            out = _ALAW_F32[np.frombuffer(raw, np.uint8)]
        elif fmt is SampleFormat.U8:
            out = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif fmt is SampleFormat.S8:
            out = np.frombuffer(raw, np.int8).astype(np.float32) / 128.0
        elif fmt is SampleFormat.S16:
            out = np.frombuffer(raw, e + "i2").astype(np.float32) / 32768.0
        elif fmt is SampleFormat.S24:
            out = _s24_to_int32(raw, self.big_endian).astype(np.float32) / 2.0**31
        elif fmt is SampleFormat.S32:
            out = (np.frombuffer(raw, e + "i4") / 2.0**31).astype(np.float32)
        else:
            floats = np.frombuffer(raw, e + ("f4" if fmt is SampleFormat.F32 else "f8"))
            # Float WAVs may hold NaN/inf or values far beyond full scale; either would poison the
            # resampler's filter state, and int16 output cannot represent them anyway.
            out = np.clip(np.nan_to_num(floats.astype(np.float32), posinf=1.0, neginf=-1.0), -1, 1)
        return out.reshape(-1, self.channels)


def _s24_to_int32(raw: bytes, big_endian: bool) -> npt.NDArray[np.int32]:
    triplets = np.frombuffer(raw, np.uint8).reshape(-1, 3)
    # Placing the three bytes at the top of an int32 sign-extends for free (value * 256).
    wide = np.zeros((len(triplets), 4), np.uint8)
    if big_endian:
        wide[:, :3] = triplets
        return wide.view(">i4").ravel()
    wide[:, 1:] = triplets
    return wide.view("<i4").ravel()


def raw_mulaw(file_size: int) -> PcmLayout:
    """Headerless μ-law: by convention (and RFC 3551 PCMU) 8 kHz mono, the whole file is audio."""
    return PcmLayout("raw μ-law", SampleFormat.ULAW, False, 1, 8000, 0, file_size)


# ---- WAV (RIFF, RIFX, RF64) -------------------------------------------------------------------

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_IEEE_FLOAT = 0x0003
_WAVE_FORMAT_ALAW = 0x0006
_WAVE_FORMAT_MULAW = 0x0007
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Names for the encodings people actually meet in call recorders, for a useful 415 message.
_UNSUPPORTED_WAV_CODECS = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0055: "MP3",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
    0x00FF: "AAC",
}

_WAV_TRUNCATED_HEADER = "The WAV file is truncated: it ends inside its header, before any audio."


def parse_wav(f: BinaryIO, file_size: int) -> PcmLayout:
    """Walk the RIFF chunks of a WAV file (positioned anywhere) and locate its audio."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12:
        raise InvalidAudio(_WAV_TRUNCATED_HEADER)
    big_endian = head[:4] == b"RIFX"
    rf64 = head[:4] in (b"RF64", b"BW64")
    u32 = struct.Struct(">I" if big_endian else "<I")

    fmt: tuple[SampleFormat, int, int] | None = None
    data: tuple[int, int] | None = None  # (offset, declared size)
    ds64_data_size: int | None = None
    pos = 12
    while fmt is None or data is None:
        if pos + 8 > file_size:
            raise InvalidAudio(_WAV_TRUNCATED_HEADER)
        f.seek(pos)
        header = f.read(8)
        chunk_id, size = header[:4], u32.unpack(header[4:])[0]
        if not _is_chunk_id(chunk_id):
            raise InvalidAudio(
                f"The WAV file is corrupt: it has an unreadable chunk header at byte {pos:,}."
            )
        body = pos + 8
        if chunk_id == b"data":
            if rf64 and size == 0xFFFFFFFF and ds64_data_size is not None:
                size = ds64_data_size
            data = (body, size)
            if fmt is None and size in _UNKNOWN_SIZES:
                # The format chunk may legally follow the audio, but then we must know where
                # the audio ends to find it.
                raise InvalidAudio(
                    "The WAV file is corrupt: it has no format description before its audio."
                )
        elif chunk_id in (b"fmt ", b"ds64"):
            if body + size > file_size:
                raise InvalidAudio(_WAV_TRUNCATED_HEADER)
            payload = f.read(size)
            if chunk_id == b"fmt ":
                fmt = _parse_fmt(payload, big_endian)
            elif rf64 and size >= 16:
                # ds64: 64-bit RIFF size, then 64-bit data size (then sample count, table).
                ds64_data_size = struct.unpack("<Q", payload[8:16])[0]
        if fmt is None or data is None:
            pos = _next_chunk(f, body, size, file_size)

    sample_format, channels, rate = fmt
    offset, declared = data
    block_align = sample_format.width * channels
    available = file_size - offset
    if declared in _UNKNOWN_SIZES:
        size = available
    elif declared > available + block_align:
        raise InvalidAudio(
            f"The WAV file is truncated: its header declares {declared:,} bytes of audio "
            f"but only {available:,} are present."
        )
    else:
        size = min(declared, available)
    size -= size % block_align
    if size == 0:
        raise InvalidAudio("The WAV file contains no audio.")
    return PcmLayout("WAV", sample_format, big_endian, channels, rate, offset, size)


def _is_chunk_id(chunk_id: bytes) -> bool:
    return len(chunk_id) == 4 and all(0x20 <= b < 0x7F for b in chunk_id)


def _next_chunk(f: BinaryIO, body: int, size: int, file_size: int) -> int:
    end = body + size
    if size % 2 == 0:
        return end
    # RIFF pads odd-sized chunks to an even length, but some writers forget the pad byte:
    # trust whichever position holds a plausible chunk id.
    f.seek(end + 1)
    if end + 9 <= file_size and _is_chunk_id(f.read(4)):
        return end + 1
    f.seek(end)
    if end + 8 <= file_size and _is_chunk_id(f.read(4)):
        return end
    return end + 1


def _parse_fmt(payload: bytes, big_endian: bool) -> tuple[SampleFormat, int, int]:
    if len(payload) < 16:
        raise InvalidAudio("The WAV file is corrupt: its format description is too short.")
    e = ">" if big_endian else "<"
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack(e + "HHIIHH", payload[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(payload) < 26:
            raise InvalidAudio("The WAV file is corrupt: its format description is too short.")
        # The sub-format GUID starts with the classic format tag.
        tag = struct.unpack(e + "H", payload[24:26])[0]
    sample_format = _wav_sample_format(tag, bits)
    _check_stream("WAV", channels, rate)
    return sample_format, channels, rate


def _wav_sample_format(tag: int, bits: int) -> SampleFormat:
    if tag == _WAVE_FORMAT_PCM:
        # Samples narrower than their container (e.g. 20 bits in 3 bytes) are left-justified,
        # so reading the whole container gives the right scale.
        width = (bits + 7) // 8
        if width in _PCM_BY_WIDTH:
            return _PCM_BY_WIDTH[width]
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        return SampleFormat.F32 if bits == 32 else SampleFormat.F64
    elif tag == _WAVE_FORMAT_MULAW and bits == 8:
        return SampleFormat.ULAW
    elif tag == _WAVE_FORMAT_ALAW and bits == 8:
        return SampleFormat.ALAW
    elif tag in _UNSUPPORTED_WAV_CODECS:
        raise UnsupportedAudio(
            f"The WAV file is encoded as {_UNSUPPORTED_WAV_CODECS[tag]}, which is not supported; "
            "use PCM, μ-law or A-law."
        )
    else:
        raise UnsupportedAudio(
            f"The WAV file uses an unsupported encoding (format tag 0x{tag:04X}); "
            "use PCM, μ-law or A-law."
        )
    raise UnsupportedAudio(
        f"The WAV file uses an unsupported sample size ({bits} bits); "
        "use 8-, 16-, 24- or 32-bit PCM, 32- or 64-bit float, μ-law or A-law."
    )


def _check_stream(container: str, channels: int, rate: int) -> None:
    if channels == 0:
        raise InvalidAudio(f"The {container} file is corrupt: it declares zero audio channels.")
    if rate == 0:
        raise InvalidAudio(f"The {container} file is corrupt: it declares a sample rate of 0 Hz.")
    if channels > MAX_CHANNELS:
        raise UnsupportedAudio(
            f"The {container} file has {channels} channels; only mono and stereo are supported."
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise UnsupportedAudio(
            f"The {container} file's sample rate of {rate:,} Hz is not supported; "
            f"use a rate between {MIN_RATE:,} and {MAX_RATE:,} Hz."
        )


# ---- AU (Sun/NeXT .snd) -----------------------------------------------------------------------

_AU_ENCODINGS = {
    1: SampleFormat.ULAW,
    2: SampleFormat.S8,
    3: SampleFormat.S16,
    4: SampleFormat.S24,
    5: SampleFormat.S32,
    6: SampleFormat.F32,
    7: SampleFormat.F64,
    27: SampleFormat.ALAW,
}


def parse_au(f: BinaryIO, file_size: int) -> PcmLayout:
    """Read the 24-byte big-endian AU header and locate its audio."""
    f.seek(0)
    head = f.read(24)
    if len(head) < 24:
        raise InvalidAudio("The AU file is truncated: it ends inside its header.")
    _magic, offset, declared, encoding, rate, channels = struct.unpack(">4sIIIII", head)
    if offset < 24:
        raise InvalidAudio("The AU file is corrupt: its header has an invalid audio offset.")
    if offset > file_size:
        raise InvalidAudio("The AU file is truncated: it ends inside its header.")
    if encoding not in _AU_ENCODINGS:
        raise UnsupportedAudio(
            f"The AU file uses an unsupported encoding ({encoding}); use PCM, μ-law or A-law."
        )
    sample_format = _AU_ENCODINGS[encoding]
    _check_stream("AU", channels, rate)
    block_align = sample_format.width * channels
    available = file_size - offset
    if declared == 0xFFFFFFFF:
        size = available
    elif declared > available + block_align:
        raise InvalidAudio(
            f"The AU file is truncated: its header declares {declared:,} bytes of audio "
            f"but only {available:,} are present."
        )
    else:
        size = min(declared, available)
    size -= size % block_align
    if size == 0:
        raise InvalidAudio("The AU file contains no audio.")
    return PcmLayout("AU", sample_format, True, channels, rate, offset, size)
