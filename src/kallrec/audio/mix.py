"""Summing tracks into one with clipping protection.

Tracks are *summed*, not averaged: in a call usually one side speaks at a time, and averaging
would halve (-6 dB) every stretch where only one person talks. The sum is computed in int32, so
it cannot wrap around; where it leaves the int16 range it has to be brought back somehow:

- hard clipping flattens peaks into square edges (harsh, buzzy distortion);
- a gain-riding limiter (attack/release envelope) is the studio answer, but it also turns down
  the quiet samples around every peak, so the mix is no longer the plain sum anywhere near one,
  and its state makes the result depend on how the audio is chunked;
- a static soft knee (chosen) leaves every sample whose sum is within ±THRESHOLD (-3 dBFS)
  bit-exact and bends only the excess, smoothly, towards full scale with ``tanh``. It has no
  state, so mixing in blocks gives identical results, and it is cheap: the curve is evaluated
  only on the (usually few) samples above the knee.

The curve is continuous with slope 1 at the knee, monotonic (louder in is never quieter out),
symmetric, and bounded by ±32767, so a loud sum keeps its sign and never wraps around. A single
track is not a sum and cannot overflow, so it is returned unchanged: a mono import is never
altered.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["THRESHOLD", "downmix", "mix", "soft_limit"]

_FULL_SCALE = 32767
THRESHOLD = round(_FULL_SCALE * 10 ** (-3 / 20))  # -3 dBFS = 23,197
_HEADROOM = _FULL_SCALE - THRESHOLD
_BLOCK = 1 << 20  # samples


def mix(tracks: Sequence[npt.NDArray[np.int16]]) -> npt.NDArray[np.int16]:
    """Sum 1-D int16 tracks (shorter ones padded with silence), soft-limited above -3 dBFS."""
    if not tracks:
        raise ValueError("mix() needs at least one track")
    for track in tracks:
        if track.dtype != np.int16 or track.ndim != 1:
            raise ValueError("mix() takes 1-D int16 tracks")
    if len(tracks) == 1:
        return tracks[0].copy()
    # The limiter has no state, so working in blocks changes nothing but the peak memory.
    out = np.empty(max(len(t) for t in tracks), np.int16)
    for start in range(0, len(out), _BLOCK):
        total = np.zeros(min(_BLOCK, len(out) - start), np.int32)
        for track in tracks:
            part = track[start : start + _BLOCK]
            total[: len(part)] += part
        out[start : start + len(total)] = soft_limit(total)
    return out


def downmix(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Mono int16 audio from (frames,) or (frames, channels): the mix of all channels."""
    if samples.ndim == 1:
        return mix([samples])
    if samples.ndim != 2:
        raise ValueError("downmix() takes int16 audio shaped (frames,) or (frames, channels)")
    return mix([samples[:, c] for c in range(samples.shape[1])])


def soft_limit(total: npt.NDArray[np.integer]) -> npt.NDArray[np.int16]:
    """Map a wide integer signal into int16: identity within ±THRESHOLD, tanh knee beyond."""
    loud = np.flatnonzero(np.abs(total) > THRESHOLD)
    if len(loud) == 0:
        return total.astype(np.int16)
    excess = np.abs(total[loud]).astype(np.float64) - THRESHOLD
    bent = THRESHOLD + _HEADROOM * np.tanh(excess / _HEADROOM)
    out = total.astype(np.int16)  # wraps only where it is about to be overwritten
    out[loud] = np.sign(total[loud]) * np.minimum(np.rint(bent), _FULL_SCALE)
    return out
