"""Pure audio functions: decode uploads, G.711, mixing, MP3 encoding. No web or database code."""

from kallrec.audio.decode import TARGET_RATE, DecodedAudio, decode_file
from kallrec.audio.encode import (
    ALLOWED_BITRATES,
    DEFAULT_BITRATE,
    DEFAULT_QUALITY,
    encode_mp3,
    encode_mp3_to_file,
)
from kallrec.audio.errors import AudioError, InvalidAudio, UnsupportedAudio
from kallrec.audio.mix import downmix, mix
from kallrec.audio.mulaw import alaw_decode, mulaw_decode, mulaw_encode

__all__ = [
    "ALLOWED_BITRATES",
    "DEFAULT_BITRATE",
    "DEFAULT_QUALITY",
    "TARGET_RATE",
    "AudioError",
    "DecodedAudio",
    "InvalidAudio",
    "UnsupportedAudio",
    "alaw_decode",
    "decode_file",
    "downmix",
    "encode_mp3",
    "encode_mp3_to_file",
    "mix",
    "mulaw_decode",
    "mulaw_encode",
]
