"""Where an RTP packet's audio goes on the session's timeline, in milliseconds.

The track writer (kallrec.live.tracks) places audio by a millisecond timestamp on the session's
clock; kallrec's SIP calls use the wall clock in epoch milliseconds (as Kallglot's own WebSocket
example does), so a SIP leg and a WebSocket leg of one session line up.

A stream's first packet sits at its arrival time; every later packet of the same SSRC sits at
that anchor plus its RTP timestamp's distance from the anchor's (8 samples per millisecond), so
network jitter does not move audio and gaps a sender leaves (silence suppression, losses) stay
the length the sender says. The anchor moves (re-anchoring at the arrival time) when:

- the SSRC changes: a new source starts where it arrives, but never over audio the previous
  source of this stream has placed;
- the RTP timestamp jumps back by more than ``MAX_BACK_MS`` (more than any reordering), or
  forward by more than an hour: the sender reset its clock;
- the stream was quiet for more than ``QUIET_MS`` and its timestamps moved on by ``BEHIND_MS``
  less than the wall clock did: a call put on hold, whose sender froze its RTP clock meanwhile.
  The hold then shows as silence of its real length, as the call had it. After a re-INVITE
  (``resync``: hold, resume) the next packet is held to this with any pause, however short, as
  the re-INVITE says the pause was real (without one, a busy event loop that hands on a backlog
  late must not look like a hold).
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLES_PER_MS = 8
TIMESTAMP_MODULUS = 1 << 32
# A timestamp more than this far ahead of the previous one is a reset, not a gap.
MAX_FORWARD_MS = 3600 * 1000
MAX_BACK_MS = 10_000
QUIET_MS = 5000
BEHIND_MS = 3000
RESYNC_BEHIND_MS = 200


@dataclass
class _Anchor:
    ssrc: int
    timestamp: int  # extended RTP timestamp at the anchor
    at_ms: int
    last_timestamp: int
    last_arrival_ms: int


class Placement:
    def __init__(self) -> None:
        self._anchor: _Anchor | None = None
        self.end_ms = 0  # where this stream's placed audio ends
        self.reanchored = 0
        self._resync = False

    def resync(self) -> None:
        """A re-INVITE: the next packet may resume after a pause its timestamps do not show."""
        self._resync = True

    def place(self, ssrc: int, timestamp: int, arrival_ms: int, samples: int) -> int:
        """The session time (ms) of a packet's first sample; remembers where its audio ends."""
        anchor = self._anchor
        if anchor is None or anchor.ssrc != ssrc:
            start = arrival_ms if anchor is None else max(arrival_ms, self.end_ms)
            anchor = self._anchor = _Anchor(ssrc, timestamp, start, timestamp, arrival_ms)
        else:
            extended = _extend(timestamp, anchor.last_timestamp)
            ahead_ms = (extended - anchor.last_timestamp) / SAMPLES_PER_MS
            quiet_ms = arrival_ms - anchor.last_arrival_ms
            resync, self._resync = self._resync, False
            if (
                ahead_ms < -MAX_BACK_MS
                or ahead_ms > MAX_FORWARD_MS
                or (quiet_ms > QUIET_MS and ahead_ms < quiet_ms - BEHIND_MS)
                or (resync and ahead_ms < quiet_ms - RESYNC_BEHIND_MS)
            ):
                self.reanchored += 1
                start = max(arrival_ms, self.end_ms)
                anchor = self._anchor = _Anchor(ssrc, extended, start, extended, arrival_ms)
            else:
                timestamp = extended
                if extended > anchor.last_timestamp:
                    anchor.last_timestamp = extended
                anchor.last_arrival_ms = max(anchor.last_arrival_ms, arrival_ms)
        at_ms = anchor.at_ms + (timestamp - anchor.timestamp) // SAMPLES_PER_MS
        self.end_ms = max(self.end_ms, at_ms + samples // SAMPLES_PER_MS)
        return at_ms


def _extend(timestamp: int, near: int) -> int:
    """The unwrapped value of a 32-bit RTP timestamp nearest to ``near`` (already unwrapped)."""
    base = near - near % TIMESTAMP_MODULUS
    candidates = (
        base - TIMESTAMP_MODULUS + timestamp,
        base + timestamp,
        base + TIMESTAMP_MODULUS + timestamp,
    )
    return min(candidates, key=lambda c: abs(c - near))
