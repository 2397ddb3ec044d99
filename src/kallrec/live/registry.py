"""The live sessions this process is serving: their open tracks and connections."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio

from kallrec.live.tracks import SessionTracks, track_dir


@dataclass
class _Live:
    tracks: SessionTracks
    connections: int = 0
    ended: anyio.Event = field(default_factory=anyio.Event)


class LiveSessions:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._sessions: dict[str, _Live] = {}

    def connect(self, session_id: str) -> tuple[SessionTracks, anyio.Event]:
        """Registers a connection; returns the shared tracks and an event set when it ends."""
        live = self._sessions.get(session_id)
        if live is None:
            live = _Live(SessionTracks(track_dir(self.data_dir, session_id)))
            self._sessions[session_id] = live
        live.connections += 1
        return live.tracks, live.ended

    def disconnect(self, session_id: str) -> None:
        live = self._sessions.get(session_id)
        if live is None:
            return
        live.connections -= 1
        if live.connections <= 0:
            live.tracks.close()
            del self._sessions[session_id]

    def tracks(self, session_id: str) -> SessionTracks | None:
        live = self._sessions.get(session_id)
        return live.tracks if live else None

    def forget(self, session_id: str) -> None:
        """The session ended: tell its connections here to finish."""
        live = self._sessions.get(session_id)
        if live is not None:
            live.ended.set()

    async def sync(self) -> None:
        """fdatasync the tracks written since the last call (off the event loop)."""
        dirty = [live.tracks for live in self._sessions.values() if live.tracks.dirty]
        for tracks in dirty:
            await anyio.to_thread.run_sync(tracks.sync)
