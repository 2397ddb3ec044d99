"""Pure audio functions: decode uploads, G.711, mixing, MP3 encoding. No web or database code.

Importing the package loads nothing: NumPy, libsndfile, soxr and LAME come with the first
module that needs them (PEP 562), so a worker that only serves downloads never loads them.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ALLOWED_BITRATES": "kallrec.audio.encode",
    "AudioError": "kallrec.audio.errors",
    "DEFAULT_BITRATE": "kallrec.audio.encode",
    "DEFAULT_QUALITY": "kallrec.audio.encode",
    "DecodedAudio": "kallrec.audio.decode",
    "InvalidAudio": "kallrec.audio.errors",
    "TARGET_RATE": "kallrec.audio.decode",
    "UnsupportedAudio": "kallrec.audio.errors",
    "alaw_decode": "kallrec.audio.mulaw",
    "decode_file": "kallrec.audio.decode",
    "downmix": "kallrec.audio.mix",
    "encode_mp3": "kallrec.audio.encode",
    "encode_mp3_to_file": "kallrec.audio.encode",
    "mix": "kallrec.audio.mix",
    "mulaw_decode": "kallrec.audio.mulaw",
    "mulaw_encode": "kallrec.audio.mulaw",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kallrec.audio' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
