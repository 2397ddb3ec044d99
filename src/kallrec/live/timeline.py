"""Where a live chunk lands: a session's timeline and the limits on it (spec §6, §9).

A client stamps every chunk with its own clock, whose origin is its business: 0, 30,000 or epoch
milliseconds all work. A session's timeline starts at the earliest timestamp it has received
(either speaker, across reconnects and restarts), and its recordings begin there.

Next to the tracks, ``timeline.json`` holds two numbers:

- ``base_ms``: the client time of byte 0 of every track file. The first chunk fixes it at
  ``first - RESERVE_MS`` and it never changes, so a sample once written never has to move;
- ``start_ms``: the earliest timestamp received. It only goes down: a chunk that arrives out of
  order before it (by up to MOVE_BACK_MS) moves it back, into the reserve, which until then is a
  file hole that finalizing never reads.

The file is written (and fsynced) before the first sample, so a restart, a reconnect or a second
worker process places audio exactly where the first one did. Tracks written before this file
existed placed chunks at their absolute timestamps; their timeline is base 0, start 0.

The limits keep one message from costing more than the audio it carries: a chunk may start at
most ``max_jump_ms`` (a setting, 60 s by default) after the furthest point the session's audio
has reached, at most MOVE_BACK_MS before the start, and never make the session longer than
MAX_SPAN_MS. A refused chunk is not written and the stream goes on (``timestamp_out_of_range``).
The start can move back by RESERVE_MS in all: a client whose chunks keep arriving ever earlier,
out of order by more than a minute in total, is refused rather than made to rewrite the tracks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kallrec.live.messages import StreamError

MOVE_BACK_MS = 10_000
RESERVE_MS = 60_000
MAX_SPAN_MS = 12 * 3600 * 1000
DEFAULT_MAX_JUMP_MS = 60_000
TIMELINE_FILE = "timeline.json"
_LOCK_FILE = "timeline.lock"
# Written by versions that placed chunks at their absolute timestamps.
_LEGACY_TRACKS = ("agent.pcm", "customer.pcm")


@dataclass(frozen=True)
class Origin:
    base_ms: int
    start_ms: int


def out_of_range(message: str) -> StreamError:
    return StreamError("timestamp_out_of_range", message)


def check(
    timestamp_ms: int, duration_ms: float, origin: Origin, end_ms: int, max_jump_ms: int
) -> None:
    """Raises ``timestamp_out_of_range`` unless a chunk may be placed at ``timestamp_ms``.

    ``end_ms`` is the furthest point the session's audio has reached (client time)."""
    start = origin.start_ms
    if timestamp_ms < start - MOVE_BACK_MS:
        raise out_of_range(
            f"timestamp_ms {timestamp_ms} is {start - timestamp_ms} ms before the start of this "
            f"session's audio ({start}); a chunk may arrive at most {MOVE_BACK_MS} ms before it."
        )
    if timestamp_ms < origin.base_ms:
        raise out_of_range(
            f"timestamp_ms {timestamp_ms} is before {origin.base_ms}: the start of a session's "
            f"audio can move back at most {RESERVE_MS} ms in all from its first chunk."
        )
    if timestamp_ms > end_ms + max_jump_ms:
        raise out_of_range(
            f"timestamp_ms {timestamp_ms} is {timestamp_ms - end_ms} ms after the furthest audio "
            f"this session has received ({end_ms}); a chunk may start at most {max_jump_ms} ms "
            "after it."
        )
    if timestamp_ms + duration_ms - min(start, timestamp_ms) > MAX_SPAN_MS:
        raise out_of_range(
            f"timestamp_ms {timestamp_ms} would make this session's audio longer than "
            f"{MAX_SPAN_MS // 3_600_000} hours."
        )


def read_origin(directory: Path) -> Origin | None:
    """The session's origin as stored, or None when no audio has been placed yet."""
    try:
        data = json.loads((directory / TIMELINE_FILE).read_text())
    except FileNotFoundError:
        if any((directory / name).exists() for name in _LEGACY_TRACKS):
            return Origin(0, 0)
        return None
    return Origin(int(data["base_ms"]), int(data["start_ms"]))


class Timeline:
    """One session's origin as this process knows it, kept in step with ``timeline.json``.

    Other processes may serve the same session (a reconnect that lands on another worker):
    every change is made under an exclusive lock on the directory's lock file, re-reading the
    file first, so two of them never fix two different bases or undo each other's move-back.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.origin = read_origin(directory) if directory.exists() else None
        self.dirty = False  # a moved start not yet fsynced

    def reload(self) -> None:
        self.origin = read_origin(self.directory)

    def establish(self, first_ms: int) -> Origin:
        """Fixes the origin from the session's first chunk (or adopts another process's)."""
        with self._locked():
            origin = read_origin(self.directory)
            if origin is None:
                origin = Origin(first_ms - RESERVE_MS, first_ms)
                self._write(origin, durable=True)
            self.origin = origin
            return origin

    def move_start(self, timestamp_ms: int) -> None:
        with self._locked():
            stored = read_origin(self.directory)
            assert stored is not None
            if timestamp_ms < stored.start_ms:
                stored = Origin(stored.base_ms, timestamp_ms)
                # fsynced with the tracks (sync()): a kill -9 loses nothing, as for the audio.
                self._write(stored, durable=False)
                self.dirty = True
            self.origin = stored

    def sync(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        with contextlib.suppress(FileNotFoundError):  # the session was finalized meanwhile
            _fsync(self.directory / TIMELINE_FILE)
            _fsync(self.directory)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, origin: Origin, *, durable: bool) -> None:
        path = self.directory / TIMELINE_FILE
        tmp = path.with_name(f".{TIMELINE_FILE}.{os.getpid()}.tmp")
        body = json.dumps({"base_ms": origin.base_ms, "start_ms": origin.start_ms}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            _fsync(self.directory)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
