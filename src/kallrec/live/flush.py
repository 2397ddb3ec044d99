"""The flush loop of one process: live audio to storage every ``live_flush_seconds``.

Each round:

1. heartbeat (every quarter of ``live_writer_timeout_seconds``): one statement refreshes
   ``live_writers.seen_at`` of every writer held here;
2. cut: every writer's audio received since the last round becomes one segment; the round's
   segments are packed into one file in this process's spool (local disk): one object per
   process per round, whatever its number of calls (one PUT, not one per call);
3. upload: every spooled pack goes to storage (bounded in time), keyed by its id, so a retry
   after a timeout rewrites the same object;
4. index: each uploaded pack's segments are added to ``live_segments`` (and the pack to
   ``live_objects``) in one transaction; then their ranges' disk space in the track files is
   given back;
5. closing writers (their last connection went) with nothing left are removed: files, row.

A storage outage leaves segments in the spool; they go up, in order of their ids, once storage
answers again. The spool is bounded (``live_spool_max_bytes``): past it, this process refuses new
audio (``session.error`` ``recording_unavailable``, the socket stays open) instead of filling
the disk, and every failed round is counted and logged. So a replica killed mid-call loses what
it received since its last successful round: one flush interval plus one upload.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from kallrec import ids
from kallrec.db.live_repository import LiveRepository, SegmentRow
from kallrec.live.messages import StreamError
from kallrec.live.registry import LiveSessions, Pending, Piece, Writer
from kallrec.live.segments import MAX_SEGMENT_BYTES
from kallrec.live.tracks import Cut
from kallrec.metrics import Metrics
from kallrec.object_keys import live_pack_key
from kallrec.storage import Storage, StorageError

log = logging.getLogger("kallrec.live")

# One upload may take this long before it counts as failed (and is retried next round): a
# storage endpoint that stopped answering must not stall the heartbeats for long.
UPLOAD_TIMEOUT_SECONDS = 5.0
UPLOAD_CONCURRENCY = 16
# A failing flush is logged at most this often per process (it is counted every time).
LOG_EVERY_SECONDS = 10.0
# A process that is being stopped spends at most this long sending its last audio.
SHUTDOWN_FLUSH_SECONDS = 10.0

REFUSED = StreamError(
    "recording_unavailable",
    "Storage is unreachable and this server's buffer for unsaved audio is full: this chunk was "
    "not recorded. The stream stays open; audio is recorded again once storage is back.",
)


class Flusher:
    def __init__(
        self,
        live: LiveSessions,
        repo: LiveRepository,
        storage: Storage,
        spool: Path,
        spool_max_bytes: int,
        metrics: Metrics | None = None,
        heartbeat_every: float = 0.0,
    ) -> None:
        self.live = live
        self.repo = repo
        self.storage = storage
        self.spool = spool
        self.spool_max_bytes = spool_max_bytes
        self.stats = live.stats
        self.metrics = metrics
        # Writers are refreshed this often (a quarter of their timeout), not every round: a
        # round's own statements stay few (new writers register when their socket opens).
        self.heartbeat_every = heartbeat_every
        self._last_heartbeat = -float("inf")

    @property
    def spooled_bytes(self) -> int:
        return sum(p.size for p in self.live.pending)

    async def round(self, *, closing_only: bool = False) -> int:
        """One flush round; returns how many writers closed (their sessions may finalize).

        ``closing_only``: a writer just lost its last connection; only the closing writers are
        cut (the others wait for their regular round: one segment per interval per call)."""
        writers = list(self.live.closing) if closing_only else self.live.writers()
        if not closing_only and time.monotonic() - self._last_heartbeat >= self.heartbeat_every:
            self._last_heartbeat = time.monotonic()
            await self._heartbeat(writers)
        await self._cut(writers)
        await self._upload()
        await self._index()
        if self.metrics is not None:
            self.metrics.live_spooled_bytes.set(self.spooled_bytes)
        return await self._close_finished()

    async def shutdown(self) -> None:
        """The last round of a stopping process: everything it holds is flushed and its writers
        go, so finalizing need not wait for their heartbeat to run out."""
        await self.round()
        for w in self.live.writers():
            if w.tracks.unflushed or any(p.holds(w) for p in self.live.pending):
                log.error("stopping with unsaved live audio of session %s", w.session_id)
                continue
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(self.repo.remove_writer, w.session_id, w.id)

    async def _heartbeat(self, writers: Sequence[Writer]) -> None:
        held = [(w.session_id, w.id) for w in writers]
        try:
            await anyio.to_thread.run_sync(self.repo.heartbeat, held)
        except Exception:
            log.exception("live writers' heartbeat failed")
        for w in writers:
            w.registered = True  # heartbeat() inserts the missing rows

    async def _cut(self, writers: Sequence[Writer]) -> None:
        over = self.spooled_bytes >= self.spool_max_bytes
        if over != self.stats.refusing:
            self.stats.refusing = over
            (log.error if over else log.warning)(
                "live spool %s: %d bytes of unsaved audio waiting for storage%s",
                "full" if over else "below its limit again",
                self.spooled_bytes,
                "; refusing new audio" if over else "; accepting audio again",
            )
        for w in writers:
            w.tracks.refusal = REFUSED if over else None
        if over:
            return
        cuts: list[tuple[Writer, Cut, str]] = []
        for w in writers:
            cut = w.tracks.take(w.session_id, MAX_SEGMENT_BYTES)
            if cut is not None:
                cuts.append((w, cut, ids.new_id("seg")))
        if not cuts:
            return
        pack_id = ids.new_id("lsp")
        path = self.spool / f"{pack_id}.seg"

        def write_pack() -> list[tuple[int, int]]:
            self.spool.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                return [(out.tell(), cut.write(out)) for _, cut, _ in cuts]

        try:
            placed = await anyio.to_thread.run_sync(write_pack)
        except OSError as exc:
            log.error("could not spool live audio: %s", exc)
            for w, cut, _ in cuts:
                w.tracks.untake(cut)
            path.unlink(missing_ok=True)
            return
        pieces = [
            Piece(w, segment_id, cut, offset, size)
            for (w, cut, segment_id), (offset, size) in zip(cuts, placed, strict=True)
        ]
        size = sum(piece.size for piece in pieces)
        self.live.pending.append(Pending(live_pack_key(pack_id), path, size, pieces))

    async def _upload(self) -> None:
        waiting = [p for p in self.live.pending if not p.uploaded]
        if not waiting:
            return
        limiter = anyio.CapacityLimiter(UPLOAD_CONCURRENCY)
        failed: list[str] = []

        async def upload(p: Pending) -> None:
            async with limiter:
                try:
                    with anyio.fail_after(UPLOAD_TIMEOUT_SECONDS):
                        await self.storage.put_file(p.key, p.path)
                except (StorageError, OSError, TimeoutError) as exc:
                    failed.append(f"{p.key}: {exc or type(exc).__name__}")
                else:
                    p.uploaded = True

        async with anyio.create_task_group() as tg:
            for p in waiting:
                tg.start_soon(upload, p)
        if failed:
            self._failed(len(failed), f"could not store {len(failed)} live pack(s): {failed[0]}")

    async def _index(self) -> None:
        for p in [p for p in self.live.pending if p.uploaded]:
            rows = [
                SegmentRow(
                    piece.segment_id,
                    piece.writer.session_id,
                    piece.writer.id,
                    p.key,
                    piece.offset,
                    piece.cut.header.span_start,
                    piece.cut.header.span_end,
                    piece.size,
                )
                for piece in p.pieces
            ]
            try:
                refused = await anyio.to_thread.run_sync(self.repo.add_segments, p.key, rows)
            except Exception as exc:
                self._failed(len(rows), f"could not index {len(rows)} live segment(s): {exc}")
                return
            self.live.pending.remove(p)
            for piece in p.pieces:
                piece.writer.tracks.release(piece.cut)
            self.stats.segments += len(rows)
            self.stats.bytes += p.size
            if self.metrics is not None:
                self.metrics.live_segments.inc(len(rows))
                self.metrics.live_segment_bytes.inc(p.size)
            if refused:
                # Their sessions were finalized without them (their writer was taken for dead).
                log.warning(
                    "%d live segment(s) came after their session was finalized", len(refused)
                )

    async def _close_finished(self) -> int:
        closed = 0
        for w in list(self.live.closing):
            if w.tracks.unflushed or any(p.holds(w) for p in self.live.pending):
                continue
            try:
                await anyio.to_thread.run_sync(self.repo.remove_writer, w.session_id, w.id)
            except Exception:
                log.exception("could not remove live writer %s", w.id)
                continue
            self.live.closing.remove(w)
            w.tracks.close()
            await anyio.to_thread.run_sync(shutil.rmtree, w.tracks.directory, True)
            closed += 1
        return closed

    def _failed(self, count: int, message: str) -> None:
        self.stats.failures += count
        if self.metrics is not None:
            self.metrics.live_flush_failures.inc(count)
        now = time.monotonic()
        if now - self.stats.last_logged >= LOG_EVERY_SECONDS:
            self.stats.last_logged = now
            log.error(
                "%s (%d bytes of live audio spooled, kept and retried every round)",
                message,
                self.spooled_bytes,
            )


async def register_writer(live: LiveSessions, repo: LiveRepository, session_id: str) -> None:
    """Makes this process's writer of the session known before its first audio (so that a
    session ended at once still waits for what it flushes), and starts its tracks from what
    other writers stored already (SessionTracks.seed)."""
    writer = live.writer(session_id)
    if writer is None:
        return
    if not writer.registered:
        await anyio.to_thread.run_sync(repo.register_writer, session_id, writer.id)
        writer.registered = True
    if not writer.seeded:
        writer.seeded = True
        span = await anyio.to_thread.run_sync(repo.span, session_id)
        if span is not None:
            writer.tracks.seed(span[0] // 8, -(-span[1] // 8))


async def flush_loop(flusher: Flusher, interval: float, closed: Callable[[], None]) -> None:
    """Runs a round every ``interval`` seconds, or at once when a writer closes; ``closed``
    is called when writers closed in a round (their sessions' finalize jobs may go on)."""
    live = flusher.live
    due = time.monotonic() + interval
    try:
        while True:
            with anyio.move_on_after(max(0.0, due - time.monotonic())):
                await live.flush_soon.wait()
            live.flush_soon.clear()
            regular = time.monotonic() >= due
            if regular:
                due = time.monotonic() + interval
            try:
                if await flusher.round(closing_only=not regular):
                    closed()
            except Exception:
                log.exception("live flush round failed; will retry")
    finally:
        # A graceful stop (SIGTERM) sends what is left first, within a bound.
        with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_FLUSH_SECONDS):
            await flusher.shutdown()
