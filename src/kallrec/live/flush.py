"""The flush loop of one process: live audio to storage every ``live_flush_seconds``.

Each round:

1. heartbeat: one statement refreshes ``live_writers.seen_at`` of every writer held here;
2. cut: every writer's audio received since the last round becomes one segment, written to this
   process's spool (local disk) first;
3. upload: every spooled segment goes to storage (concurrently, each bounded in time), keyed by
   its id, so a retry after a timeout rewrites the same object;
4. index: the uploaded ones are added to ``live_segments`` in one transaction; then their ranges'
   disk space in the track files is given back;
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
from kallrec.live.registry import LiveSessions, Pending, Writer
from kallrec.live.segments import MAX_SEGMENT_BYTES
from kallrec.live.tracks import Cut
from kallrec.metrics import Metrics
from kallrec.object_keys import live_segment_key
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
    ) -> None:
        self.live = live
        self.repo = repo
        self.storage = storage
        self.spool = spool
        self.spool_max_bytes = spool_max_bytes
        self.stats = live.stats
        self.metrics = metrics

    @property
    def spooled_bytes(self) -> int:
        return sum(p.size for p in self.live.pending)

    async def round(self, *, closing_only: bool = False) -> int:
        """One flush round; returns how many writers closed (their sessions may finalize).

        ``closing_only``: a writer just lost its last connection; only the closing writers are
        cut (the others wait for their regular round: one segment per interval per call)."""
        writers = list(self.live.closing) if closing_only else self.live.writers()
        if not closing_only:
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
            if w.tracks.unflushed or any(p.writer is w for p in self.live.pending):
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
        cuts: list[tuple[Writer, Cut, str, Path]] = []
        for w in writers:
            cut = w.tracks.take(w.session_id, MAX_SEGMENT_BYTES)
            if cut is not None:
                segment_id = ids.new_id("seg")
                cuts.append((w, cut, segment_id, self.spool / f"{segment_id}.seg"))
        if not cuts:
            return

        def write_all() -> list[int | BaseException]:
            self.spool.mkdir(parents=True, exist_ok=True)
            sizes: list[int | BaseException] = []
            for _, cut, _, path in cuts:
                try:
                    sizes.append(cut.write(path))
                except OSError as exc:
                    sizes.append(exc)
            return sizes

        sizes = await anyio.to_thread.run_sync(write_all)
        for (w, cut, segment_id, path), size in zip(cuts, sizes, strict=True):
            if isinstance(size, BaseException):
                log.error("could not spool live audio of %s: %s", w.session_id, size)
                w.tracks.untake(cut)
                continue
            key = live_segment_key(w.session_id, segment_id)
            self.live.pending.append(Pending(w, segment_id, key, path, size, cut))

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
            self._failed(len(failed), f"could not store {len(failed)} live segment(s): {failed[0]}")

    async def _index(self) -> None:
        done = [p for p in self.live.pending if p.uploaded]
        if not done:
            return
        rows = [
            SegmentRow(
                p.segment_id,
                p.writer.session_id,
                p.writer.id,
                p.key,
                p.cut.header.span_start,
                p.cut.header.span_end,
                p.size,
            )
            for p in done
        ]
        try:
            refused = await anyio.to_thread.run_sync(self.repo.add_segments, rows)
        except Exception as exc:
            self._failed(len(rows), f"could not index {len(rows)} live segment(s): {exc}")
            return
        if self.metrics is not None:
            self.metrics.live_segments.inc(len(done))
            self.metrics.live_segment_bytes.inc(sum(p.size for p in done))
        for p in done:
            self.live.pending.remove(p)
            p.writer.tracks.release(p.cut)
            self.stats.segments += 1
            self.stats.bytes += p.size
            if p.segment_id in refused:
                # Its session was finalized without it (this writer was taken for dead).
                log.warning("live segment %s came after its session was finalized", p.key)
                await self.storage.delete(p.key)

    async def _close_finished(self) -> int:
        closed = 0
        for w in list(self.live.closing):
            if w.tracks.unflushed or any(p.writer is w for p in self.live.pending):
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
