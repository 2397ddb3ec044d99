"""The flush loop of one process (live/flush.py): tracks to segments in storage, the index, the
spool that outlasts a storage outage, and the writers that finalizing waits for."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kallrec.audio.mulaw import mulaw_decode, mulaw_encode
from kallrec.db.models import Session
from kallrec.lifecycle import reap_files
from kallrec.live.assemble import assemble
from kallrec.live.finalize import WritersStillOpen, finalize_session
from kallrec.live.flush import Flusher, register_writer
from kallrec.live.messages import StreamError
from kallrec.runtime import Runtime
from kallrec.storage import ObjectInfo, Storage, StorageError
from tests.db.factories import new_session

EPOCH_MS = 1_700_000_000_000


class Flaky:
    """The runtime's storage, which can be taken down (every call fails) and brought back."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.down = False

    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        if self.down:
            raise StorageError("connection refused")
        return await self.inner.put_file(key, src)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def chunk(value: int, ms: int = 100) -> bytes:
    return mulaw_encode(np.full(8 * ms, value, dtype=np.int16))


def level(value: int) -> int:
    return int(mulaw_decode(chunk(value, 1))[0])


def session_row(rt: Runtime) -> Session:
    org, _ = rt.repo.ensure_org("acme", 30)
    session = new_session(org.id)
    rt.repo.insert_session(session)
    return session


def flusher(rt: Runtime, storage: Storage | None = None, spool_max: int = 1 << 30) -> Flusher:
    return Flusher(rt.live, rt.live_repo, storage or rt.storage, rt.scratch / "spool", spool_max)


async def test_a_round_sends_what_was_written_and_gives_back_its_disk_space(
    runtime: Runtime,
) -> None:
    session = session_row(runtime)
    tracks, _ = runtime.live.connect(session.id)
    for i in range(20):  # 2 s of the agent
        tracks.write("agent", EPOCH_MS + i * 100, chunk(1000))
    track = tracks.directory / "agent.pcm"
    assert os.stat(track).st_blocks > 0

    await flusher(runtime).round()

    (segment,) = runtime.live_repo.segments(session.id)
    assert (segment.start_sample, segment.end_sample) == (EPOCH_MS * 8, (EPOCH_MS + 2000) * 8)
    assert await runtime.storage.stat(segment.storage_key) is not None
    # The replica keeps only what it has not flushed: the size stays, the blocks are gone (but
    # the two partial file-system blocks at the ends of the range, zeroed in place).
    assert os.stat(track).st_size > 0 and os.stat(track).st_blocks * 512 <= 2 * 4096
    assert not tracks.unflushed


async def test_audio_written_again_after_a_cut_is_not_punched_away(runtime: Runtime) -> None:
    session = session_row(runtime)
    tracks, _ = runtime.live.connect(session.id)
    tracks.write("agent", EPOCH_MS, chunk(1000))
    cut = tracks.take(session.id, 1 << 20)
    assert cut is not None
    tracks.write("agent", EPOCH_MS, chunk(2000))  # a duplicate arriving meanwhile
    tracks.release(cut)
    data = np.fromfile(tracks.directory / "agent.pcm", dtype="<i2")
    assert (data[-800:] == level(2000)).all()  # still there, for the next segment
    again = tracks.take(session.id, 1 << 20)
    assert again is not None and again.pcm_bytes == 1600


async def test_a_store_outage_is_spooled_on_disk_and_caught_up(runtime: Runtime) -> None:
    session = session_row(runtime)
    store = Flaky(runtime.storage)
    f = flusher(runtime, store)
    tracks, _ = runtime.live.connect(session.id)
    store.down = True
    for second in range(3):
        for i in range(10):
            ms = second * 1000 + i * 100
            tracks.write("agent", EPOCH_MS + ms, chunk(1000 + second))
            tracks.write("customer", EPOCH_MS + ms, chunk(3000))
        await f.round()
    assert runtime.live_repo.segments(session.id) == []
    assert f.stats.failures >= 3 and len(runtime.live.pending) == 3  # one pack per round
    assert sum(p.path.stat().st_size for p in runtime.live.pending) == f.spooled_bytes

    store.down = False
    await f.round()

    segments = runtime.live_repo.segments(session.id)
    assert len(segments) == 3 and runtime.live.pending == []
    rebuilt = await assemble(runtime.storage, segments, runtime.scratch / "rebuilt")
    assert rebuilt is not None and rebuilt.samples == 3 * 8000
    agent = np.concatenate([block["agent"] for block in rebuilt.blocks()])
    assert [int(agent[s * 8000 + 100]) for s in range(3)] == [level(1000 + s) for s in range(3)]


async def test_past_the_spool_limit_new_audio_is_refused_until_storage_is_back(
    runtime: Runtime,
) -> None:
    session = session_row(runtime)
    store = Flaky(runtime.storage)
    f = flusher(runtime, store, spool_max=1)
    tracks, _ = runtime.live.connect(session.id)
    store.down = True
    tracks.write("agent", EPOCH_MS, chunk(1000))
    await f.round()  # spooled, not stored
    await f.round()  # the spool is over its limit: refusing
    with pytest.raises(StreamError) as refused:
        tracks.write("agent", EPOCH_MS + 100, chunk(1000))
    assert refused.value.code == "recording_unavailable"
    assert f.stats.refusing

    store.down = False
    await f.round()
    await f.round()
    tracks.write("agent", EPOCH_MS + 100, chunk(1000))  # accepted again
    assert not f.stats.refusing


async def test_a_closed_writer_goes_once_its_audio_is_stored(runtime: Runtime) -> None:
    session = session_row(runtime)
    f = flusher(runtime)
    tracks, _ = runtime.live.connect(session.id)
    writer = runtime.live.writer(session.id)
    assert writer is not None
    runtime.live_repo.register_writer(session.id, writer.id)
    tracks.write("agent", EPOCH_MS, chunk(1000))
    runtime.live.disconnect(session.id)
    assert runtime.live_repo.active_writers(session.id, 0) == [writer.id]

    assert await f.round() == 1

    assert runtime.live_repo.active_writers(session.id, 0) == []
    assert not tracks.directory.exists() and runtime.live.writers() == []
    assert len(runtime.live_repo.segments(session.id)) == 1


async def test_finalizing_waits_for_a_live_writer_and_reads_its_segments(
    runtime: Runtime,
) -> None:
    session = session_row(runtime)
    f = flusher(runtime)
    tracks, _ = runtime.live.connect(session.id)
    writer = runtime.live.writer(session.id)
    assert writer is not None
    runtime.live_repo.register_writer(session.id, writer.id)
    for i in range(10):
        tracks.write("agent", EPOCH_MS + i * 100, chunk(1000))
    runtime.repo.end_session(session.org_id, False, session.id)

    with pytest.raises(WritersStillOpen):  # it still holds audio it has not flushed
        await finalize_session(runtime, session.id)

    runtime.live.disconnect(session.id)
    await f.round()
    await finalize_session(runtime, session.id)

    recordings = runtime.repo.live_recordings(session.id)
    assert {r.channel for r in recordings} == {"mixed"}
    assert all(r.staging_key for r in recordings)
    # Finalized: its segments are gone, and its packed object goes to the reaper.
    assert runtime.live_repo.segments(session.id) == []
    assert [k for k in runtime.repo.files_to_remove(float("inf")) if k.startswith("live/")]
    await reap_files(runtime)
    assert not [k for k in await _keys(runtime) if k.startswith("live/")]


async def test_a_writer_taken_for_dead_is_not_waited_for(runtime: Runtime) -> None:
    session = session_row(runtime)
    runtime.live_repo.register_writer(session.id, "wrt_gone")
    runtime.repo.end_session(session.org_id, False, session.id)
    with runtime.db.write() as conn:  # its last heartbeat, long ago
        conn.exec_driver_sql("UPDATE live_writers SET seen_at = 1")
    await finalize_session(runtime, session.id)  # nothing flushed: the recording fails
    (rec,) = runtime.repo.live_recordings(session.id)
    assert rec.status == "failed" and rec.failure_reason == "no_audio"


async def _keys(rt: Runtime) -> list[str]:
    root = rt.settings.data_dir / "audio"
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


async def test_a_writer_on_another_replica_keeps_the_session_s_limits(runtime: Runtime) -> None:
    """A reconnect that lands elsewhere starts from what is stored: a chunk an hour past the
    session's audio is refused there too (not the start of a 1-hour silence)."""
    session = session_row(runtime)
    f = flusher(runtime)
    first, _ = runtime.live.connect(session.id)
    first.write("agent", EPOCH_MS, chunk(1000))
    runtime.live.disconnect(session.id)
    await f.round(closing_only=True)

    again, _ = runtime.live.connect(session.id)  # a new writer, as on another replica
    await register_writer(runtime.live, runtime.live_repo, session.id)
    with pytest.raises(StreamError) as refused:
        again.write("agent", EPOCH_MS + 3_600_000, chunk(1000))
    assert refused.value.code == "timestamp_out_of_range"
    again.write("agent", EPOCH_MS + 30_000, chunk(1000))  # within the jump limit: fine
