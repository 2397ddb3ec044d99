"""The live sessions this process is serving: their open tracks, connections and unflushed audio.

Each session a process serves gets a *writer*: an id, a directory of track files of its own
(inside the process's scratch, so what a killed process leaves is swept, never flushed later:
a replica that comes back does not resurrect old state) and a row in ``live_writers`` that the
flusher keeps fresh. When its last connection goes, the writer is *closing*: the flusher sends
what is left, then removes the files and the row, and only then may the session be finalized.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from kallrec import ids
from kallrec.live.tracks import Cut, SessionTracks


@dataclass
class Writer:
    session_id: str
    id: str
    tracks: SessionTracks
    connections: int = 0
    ended: anyio.Event = field(default_factory=anyio.Event)
    closing: bool = False
    registered: bool = False  # its live_writers row exists
    seeded: bool = False  # its tracks know what other writers stored (tracks.seed)


@dataclass
class Piece:
    """One writer's segment inside a pack."""

    writer: Writer
    segment_id: str
    cut: Cut
    offset: int
    size: int


@dataclass
class Pending:
    """One round's segments, packed in one spool file: not yet in storage and the index."""

    key: str
    path: Path
    size: int
    pieces: list[Piece]
    uploaded: bool = False

    def holds(self, writer: Writer) -> bool:
        return any(piece.writer is writer for piece in self.pieces)


class FlushStats:
    """What this process's flusher did (live/flush.py), for the metrics and the benchmark."""

    def __init__(self) -> None:
        self.segments = 0
        self.bytes = 0
        self.failures = 0
        self.refusing = False
        self.last_logged = 0.0


class LiveSessions:
    def __init__(self, directory: Path) -> None:
        self.directory = directory  # this process's: <scratch>/live
        self._sessions: dict[str, Writer] = {}
        self.closing: list[Writer] = []
        self.pending: list[Pending] = []
        # Set when there is something to flush before the next round (a writer closed).
        self.flush_soon = asyncio.Event()
        self.stats = FlushStats()
        # A process that had this pid before left nothing here worth sending (see above).
        shutil.rmtree(directory, ignore_errors=True)

    def connect(self, session_id: str) -> tuple[SessionTracks, anyio.Event]:
        """Registers a connection; returns the shared tracks and an event set when it ends."""
        live = self._sessions.get(session_id)
        if live is None:
            writer = ids.new_id("wrt")
            tracks = SessionTracks(self.directory / f"{session_id}-{writer}")
            live = Writer(session_id, writer, tracks)
            self._sessions[session_id] = live
        live.connections += 1
        return live.tracks, live.ended

    def writer(self, session_id: str) -> Writer | None:
        return self._sessions.get(session_id)

    def disconnect(self, session_id: str) -> None:
        live = self._sessions.get(session_id)
        if live is None:
            return
        live.connections -= 1
        if live.connections <= 0:
            del self._sessions[session_id]
            live.closing = True
            self.closing.append(live)
            self.flush_soon.set()

    def tracks(self, session_id: str) -> SessionTracks | None:
        live = self._sessions.get(session_id)
        return live.tracks if live else None

    def writers(self) -> list[Writer]:
        """Every writer still holding audio here: serving, and closing."""
        return [*self._sessions.values(), *self.closing]

    def forget(self, session_id: str) -> None:
        """The session ended: tell its connections here to finish."""
        live = self._sessions.get(session_id)
        if live is not None:
            live.ended.set()
