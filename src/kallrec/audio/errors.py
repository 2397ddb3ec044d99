"""Errors raised while reading uploaded audio.

The API layer maps them to HTTP answers at the edge; their messages are written for the person
who uploaded the file, so they must be a single clear sentence without internal details.

    AudioError
    ├── UnsupportedAudio   not a format we accept             → 415 unsupported_media_type
    └── InvalidAudio       an accepted format, but unusable   → 422 invalid_audio
                           (empty, corrupt, truncated, no audio frames)
"""

from __future__ import annotations

__all__ = ["AudioError", "InvalidAudio", "UnsupportedAudio"]


class AudioError(Exception):
    """Base class: the uploaded bytes cannot become a recording. ``str(error)`` is the message."""


class UnsupportedAudio(AudioError):
    """The bytes are not in a format (or encoding) that kallrec accepts."""


class InvalidAudio(AudioError):
    """The format is accepted but the file is empty, corrupt, truncated or holds no audio."""
