"""G.711 companding: μ-law and A-law bytes ⇄ 16-bit linear PCM.

Decoding is a 256-entry table lookup. μ-law encoding is a 65,536-entry table built once from the
vectorised G.711 formula, so encoding a call is a single gather instead of a dozen array passes.
The formulas are those of the ITU-T G.711 reference (Sun Microsystems' public-domain ``g711.c``,
the same one CPython's former ``audioop`` used), so values match telephony equipment exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["ALAW_TABLE", "MULAW_TABLE", "alaw_decode", "mulaw_decode", "mulaw_encode"]

_ULAW_BIAS = 0x84
# Magnitude ceiling (in the 14-bit domain the μ-law encoder works in) before the bias is added.
_ULAW_CLIP = 8159


def _build_mulaw_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decode_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _mulaw_encode_formula(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    # G.711 works on 14-bit magnitudes; the arithmetic shift keeps -1..-4 negative, as in g711.c.
    pcm = pcm >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    # g711.c returns the maximum code when the biased magnitude overflows 13 bits; capping at
    # 0x1FFF yields that same code through the normal path, keeping the segment in 0..7.
    mag = np.minimum(mag, 0x1FFF)
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    uval = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    codes: npt.NDArray[np.uint8] = (uval ^ mask).astype(np.uint8)  # NumPy's stubs say Any here
    return codes


MULAW_TABLE: npt.NDArray[np.int16] = _build_mulaw_decode_table()
ALAW_TABLE: npt.NDArray[np.int16] = _build_alaw_decode_table()
MULAW_TABLE.flags.writeable = False
ALAW_TABLE.flags.writeable = False

# Indexed by the int16 sample reinterpreted as uint16 (two's complement bit pattern).
_MULAW_ENCODE_TABLE = _mulaw_encode_formula(
    np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
)


def mulaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """Decode G.711 μ-law bytes (one byte per sample) to int16 samples."""
    return MULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """Decode G.711 A-law bytes (one byte per sample) to int16 samples."""
    return ALAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: npt.ArrayLike) -> bytes:
    """Encode integer samples (clipped to the int16 range) to G.711 μ-law bytes."""
    arr = np.asarray(samples)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"mulaw_encode() needs integer samples, got dtype {arr.dtype}")
    if arr.dtype != np.int16:
        arr = np.clip(arr, -32768, 32767).astype(np.int16)
    return _MULAW_ENCODE_TABLE[arr.ravel().view(np.uint16)].tobytes()
