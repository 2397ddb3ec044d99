"""Where a carrier's chunk lands on its session's timeline.

A carrier's timestamps count from the start of its own stream (Twilio, Telnyx: milliseconds
since the stream began; Plivo: epoch milliseconds), and Vonage and Kallglot's older ``audio``
send none. A new stream of the same session (a reconnect with a new ``streamSid``, or the other
leg of the call) starts its own count again. So each stream is anchored on one clock every
stream of a session shares, the wall clock in milliseconds when its connection was accepted
(its carrier counts from there; Kallglot's older ``audio``: its first chunk), and each chunk
lands at ``anchor + (timestamp - first timestamp of the stream)``: two legs streamed
at once line up, a reconnect lands after the gap it left, and within a stream the carrier's own
timestamps place every chunk exactly (out of order or twice: same place). A chunk without a
timestamp follows the previous one of its track.

A stream sent faster than real time reaches past the wall clock; a stream of the same session
started after it has ended is anchored at its end instead (``after_ms``), so it never writes
over it. One that starts within RECONNECT_SNAP_MS of the previous stream's end is anchored there
too: a reconnect continues the call without the silence of its own setup time.
"""

from __future__ import annotations

from collections import OrderedDict


class StreamClock:
    def __init__(self, anchor_ms: int) -> None:
        self.anchor_ms = anchor_ms
        self._first: int | None = None
        self._cursor: dict[str, float] = {}

    def place(self, track: str, timestamp_ms: int | None, duration_ms: float) -> int:
        """The session time (ms) of a chunk of ``duration_ms`` on ``track``."""
        if timestamp_ms is None:
            start = self._cursor.get(track, float(self.anchor_ms))
        else:
            if self._first is None:
                self._first = timestamp_ms
            start = float(self.anchor_ms + timestamp_ms - self._first)
        end = start + duration_ms
        if timestamp_ms is None or end > self._cursor.get(track, 0.0):
            self._cursor[track] = end
        return round(start)

    @property
    def end_ms(self) -> int:
        """The furthest point this stream's audio reached (the anchor before any)."""
        return round(max(self._cursor.values(), default=float(self.anchor_ms)))


# A stream that starts this soon after the session's previous one ended continues it seamlessly:
# a reconnect's own setup time (tens of ms, more on a loaded server) is no silence of the call.
RECONNECT_SNAP_MS = 2000


def anchor(now_ms: int, after_ms: int | None) -> int:
    """Where a new stream's first chunk lands: now, or right where the session's previous stream
    ended when that is later (it was sent faster than real time) or only moments ago."""
    if after_ms is None:
        return now_ms
    if now_ms - after_ms <= RECONNECT_SNAP_MS:
        return after_ms
    return now_ms


class RecentEnds:
    """Where the streams of recent sessions reached, in this process (bounded: an entry matters
    only for the seconds around a reconnect)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._ends: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def get(self, session_id: str) -> int | None:
        return self._ends.get(session_id)

    def note(self, session_id: str, end_ms: int) -> None:
        self._ends[session_id] = max(end_ms, self._ends.get(session_id, end_ms))
        self._ends.move_to_end(session_id)
        while len(self._ends) > self._capacity:
            self._ends.popitem(last=False)


RECENT_ENDS = RecentEnds()
