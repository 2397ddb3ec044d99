"""Kallglot's older ``audio`` message on a connection of Kallglot's own protocol.

The message (carriers/kallglot_audio.py) has no time: each chunk follows the previous one of
its speaker on this connection, the first anchored on the wall clock (carriers/clock.py), so a
reconnect continues after the gap it left. Errors are the stream's (``session.error``): a bad
format is ``invalid_audio_format``, anything else broken ``invalid_message``.
"""

from __future__ import annotations

import json
from typing import Any

from kallrec import timeutil
from kallrec.carriers import codec, kallglot_audio
from kallrec.carriers.clock import RECENT_ENDS, StreamClock, anchor
from kallrec.carriers.events import Malformed
from kallrec.live.messages import StreamError

_FORMAT_WORDS = ("encoding", "sample_rate", "channels")


class OlderAudio:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.clock: StreamClock | None = None

    @staticmethod
    def matches(text: str) -> bool:
        """Cheaply: could this be ``{"type": "audio", …}``? (parse() decides.)"""
        return '"audio"' in text and '"audio.input"' not in text and _type_is_audio(text)

    def write(self, text: str, tracks: Any, *, max_jump_ms: int, muted: set[str]) -> None:
        data = json.loads(text)
        try:
            fmt, chunks = kallglot_audio.parse(data)
            chunk = chunks[0]
            if fmt.channels == 2:
                split = codec.split(chunk.payload, fmt)
                per_speaker = dict(zip(kallglot_audio.STEREO, split, strict=True))
            else:
                per_speaker = {chunk.track: codec.to_mulaw_8k(chunk.payload, fmt)}
        except Malformed as exc:
            bad_format = any(word in str(exc) for word in _FORMAT_WORDS)
            code = "invalid_audio_format" if bad_format else "invalid_message"
            raise StreamError(code, f"Invalid audio message: {exc}.") from None
        if self.clock is None:
            now_ms = round(timeutil.now() * 1000)
            self.clock = StreamClock(anchor(now_ms, RECENT_ENDS.get(self.session_id)))
        for speaker, mulaw in per_speaker.items():
            if not mulaw:
                continue
            at = self.clock.place(speaker, chunk.timestamp_ms, len(mulaw) / 8)
            tracks.write(speaker, at, mulaw, max_jump_ms=max_jump_ms, muted=speaker in muted)
        RECENT_ENDS.note(self.session_id, self.clock.end_ms)


def _type_is_audio(text: str) -> bool:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("type") == "audio"
