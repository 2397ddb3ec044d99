"""Rebuilding a session's tracks from its segments, as any replica does when it finalizes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from kallrec.db.live_repository import SegmentRow
from kallrec.live.assemble import MAX_SPAN_SAMPLES, assemble
from kallrec.live.segments import Extent, SegmentHeader
from kallrec.storage.memory import MemoryStorage


def segment(
    store: MemoryStorage,
    seg_id: str,
    extents: list[tuple[str, int, int, int]],
    span: tuple[int, int],
) -> SegmentRow:
    """A stored segment whose extents are (speaker, start sample, samples, value)."""
    header = SegmentHeader(
        "sess_1",
        tuple(sorted({e[0] for e in extents} | {"customer"})),
        span[0],
        span[1],
        tuple(Extent(sp, start, n) for sp, start, n, _ in extents),
    )
    pcm = b"".join(np.full(n, v, dtype="<i2").tobytes() for _, _, n, v in extents)
    # Every segment in one packed object, behind what is there already.
    key = "live/lsp_1.seg"
    blob = header.to_bytes() + pcm
    offset = len(store.objects.get(key, b""))
    store.objects[key] = store.objects.get(key, b"") + blob
    return SegmentRow(seg_id, "sess_1", "w", key, offset, span[0], span[1], len(blob))


async def test_the_later_segment_wins_where_two_writers_overlap(tmp_path: Path) -> None:
    store = MemoryStorage()
    base = 8_000_000
    rows = [
        # Two sockets for the agent on two replicas at once: the later cut wins its range.
        segment(store, "seg_1", [("agent", base, 800, 100)], (base, base + 800)),
        segment(store, "seg_2", [("agent", base + 400, 800, 200)], (base + 400, base + 1200)),
        # Audio that only the customer's muted time reached: silence, but the span grows.
        segment(store, "seg_3", [], (base + 1200, base + 1600)),
    ]
    tracks = await assemble(store, rows, tmp_path / "t")
    assert tracks is not None and tracks.samples == 1600
    assert tracks.speakers == ("agent", "customer")
    (block,) = list(tracks.blocks())
    agent = block["agent"]
    assert (agent[:400] == 100).all() and (agent[400:1200] == 200).all()
    assert (agent[1200:] == 0).all() and (block["customer"] == 0).all()


async def test_a_missing_segment_is_silence_not_a_failed_call(tmp_path: Path) -> None:
    store = MemoryStorage()
    rows = [
        segment(store, "seg_1", [("agent", 0, 800, 100)], (0, 800)),
        segment(store, "seg_2", [("agent", 800, 800, 100)], (800, 1600)),
    ]
    rows[0] = replace(rows[0], storage_key="live/lsp_gone.seg")  # removed by hand
    tracks = await assemble(store, rows, tmp_path / "t")
    assert tracks is not None
    (block,) = list(tracks.blocks())
    assert (block["agent"][:800] == 0).all() and (block["agent"][800:] == 100).all()


async def test_writers_far_apart_on_the_client_clock_never_make_more_than_12_hours(
    tmp_path: Path,
) -> None:
    store = MemoryStorage()
    day = 24 * 3600 * 8000
    rows = [
        segment(store, "seg_1", [("agent", 0, 800, 100)], (0, 800)),
        segment(store, "seg_2", [("agent", day, 800, 100)], (day, day + 800)),
    ]
    tracks = await assemble(store, rows, tmp_path / "t")
    assert tracks is not None and tracks.samples == MAX_SPAN_SAMPLES
    assert (tmp_path / "t" / "agent.pcm").stat().st_size == 1600  # the far one was not written
