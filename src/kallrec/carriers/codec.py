"""A carrier's payload → the 8 kHz μ-law the session's track writer takes.

μ-law at 8 kHz (Twilio, most Telnyx and Plivo streams) passes through untouched. A-law and
8-bit PCM are decoded and re-encoded; 16-bit linear PCM at another rate is resampled to 8 kHz
with soxr first. Every chunk is converted on its own: chunks may arrive out of order or twice,
and are placed by their own timestamps, so no state may carry from one to the next. The price
is at a chunk's edges, where soxr sees no neighbours: 16 kHz speech-band tones in 20 ms chunks
come out 33 dB above their difference from a whole-signal resampling, against G.711 μ-law's own
~38 dB, which every recording goes through anyway. A stateful resampler per track (soxr's
ResampleStream) would remove it, but holds back its last ~100 ms until flushed: audio a killed
server would lose, which the track writer exists to prevent. The writer stores 16-bit PCM
decoded from this μ-law: G.711 is what the recordings are made of whatever the carrier sends
(8 kHz telephony, spec §1).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from kallrec.audio.mulaw import alaw_decode, mulaw_encode
from kallrec.carriers.events import (
    ALAW,
    L16,
    L16_BIG,
    MULAW,
    PCM8,
    UNSUPPORTED,
    Malformed,
    MediaFormat,
)

TARGET_RATE = 8000


def bytes_per_sample(fmt: MediaFormat) -> int:
    return (2 if fmt.encoding in (L16, L16_BIG) else 1) * fmt.channels


def samples(payload: bytes, fmt: MediaFormat) -> npt.NDArray[np.int16]:
    """The payload as int16 samples at its own rate, channels interleaved."""
    if fmt.encoding == UNSUPPORTED:
        raise Malformed("a format kallrec does not decode")
    if fmt.encoding == MULAW:
        from kallrec.audio.mulaw import mulaw_decode

        return mulaw_decode(payload)
    if fmt.encoding == ALAW:
        return alaw_decode(payload)
    if fmt.encoding == PCM8:
        return ((np.frombuffer(payload, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(
            np.int16
        )
    usable = len(payload) - len(payload) % 2  # a stray odd byte is not half a sample
    dtype = ">i2" if fmt.encoding == L16_BIG else "<i2"
    return np.frombuffer(payload[:usable], dtype=dtype).astype(np.int16)


def to_mulaw_8k(payload: bytes, fmt: MediaFormat) -> bytes:
    """One channel's chunk as 8 kHz μ-law (``fmt.channels`` must be 1 here: see split)."""
    if fmt.channels != 1:
        raise Malformed("split multi-channel audio first")
    if fmt.encoding == MULAW and fmt.rate == TARGET_RATE:
        return payload
    pcm = samples(payload, fmt)
    return mulaw_encode(resample(pcm, fmt.rate))


def resample(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    if rate == TARGET_RATE or pcm.size == 0:
        return pcm
    out = soxr.resample(pcm, rate, TARGET_RATE)
    return np.asarray(out, dtype=np.int16)


def split(payload: bytes, fmt: MediaFormat) -> list[bytes]:
    """Interleaved multi-channel audio → one 8 kHz μ-law chunk per channel."""
    pcm = samples(payload, fmt)
    channels = max(1, fmt.channels)
    pcm = pcm[: pcm.size - pcm.size % channels].reshape(-1, channels)
    return [
        mulaw_encode(resample(np.ascontiguousarray(pcm[:, c]), fmt.rate)) for c in range(channels)
    ]


def duration_ms(payload: bytes, fmt: MediaFormat) -> float:
    """How long the chunk lasts, from its size (what places the next chunk when a carrier sends
    no timestamps)."""
    return len(payload) / bytes_per_sample(fmt) * 1000 / fmt.rate


def l16_byte_order(payload: bytes) -> str | None:
    """L16 or L16_BIG when the chunk's audio says so clearly, else None (too quiet to tell).

    Carriers differ, and documents are silent or wrong about it: Telnyx's L16 is RTP's
    big-endian, Vonage's and Plivo's little-endian. Read in the right order, telephony audio is
    smooth (sample to sample differences well below the samples' size); read byte-swapped it is
    noise-like (differences as large as the samples). A stream's first clearly audible chunk
    settles its order for the rest of the stream (api/carrier_stream.py). Audio made of high
    frequencies only (above a quarter of the sample rate) is rough either way: no verdict, and
    the declared order stands."""
    usable = len(payload) - len(payload) % 2
    if usable < 64:
        return None
    little = np.frombuffer(payload[:usable], dtype="<i2").astype(np.float64)
    big = np.frombuffer(payload[:usable], dtype=">i2").astype(np.float64)
    roughness = {}
    for name, pcm in ((L16, little), (L16_BIG, big)):
        size = float(pcm.std())  # around its mean: a constant (DC) says nothing
        roughness[name] = float(np.abs(np.diff(pcm)).mean()) / size if size >= 64 else None
    lo, hi = roughness[L16], roughness[L16_BIG]
    if lo is not None and lo < 0.8 and (hi is None or hi > 1.0):
        return L16
    if hi is not None and hi < 0.8 and (lo is None or lo > 1.0):
        return L16_BIG
    return None
