"""How many waveform peaks a call gets and their scale: numbers only, so the API document can
quote them without loading numpy (kallrec.audio.peaks computes them)."""

from __future__ import annotations

PEAKS_PER_SECOND = 20
MAX_PEAKS = 2000
SCALE = 255
