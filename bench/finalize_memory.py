"""What finishing a long live call costs in memory: the code before issue 11 against today's.

    .venv/bin/python bench/finalize_memory.py            # 4-hour call, ~2 minutes, ~1.5 GB disk
    .venv/bin/python bench/finalize_memory.py --hours 1

One two-speaker call of speech-like audio is written as a live session's tracks, then finished
into the three recordings of a ``dual`` session (mixed, agent, customer) the way the worker does
it: the finalize job stages each recording's PCM, then a processing job encodes each to MP3.
Both variants run on the same files, each in a fresh process, side by side:

- ``before``: the code as of 4a22860 (kept here verbatim in spirit): both tracks read whole,
  padded, mixed into a whole array, staged with ``tofile``; each staged file read whole and
  encoded;
- ``after``: kallrec's finalize and processing functions: blocks of 2^18 samples from the track
  files through the mix into the staging file, and from there through LAME.

For each it reports the process's peak RSS above what it held before starting (the imports
done), the peak of Python-traced allocations (tracemalloc: NumPy's buffers included) in a
second run, and the CPU time. Storage and the database are left out: a local put is a rename.

Recorded (2-core box shared with other work, one run, 4-hour call, two 220 MiB tracks):

             peak RSS +  traced peak    CPU s   wall s
    before      878.8 M      878.9 M     23.1     23.4
    after         4.3 M        4.3 M     20.1     20.4

and the six MP3s byte-identical (57,600,576 bytes each). The worker runs up to two jobs at once,
so before this change a 4-hour call could hold twice the encode share; after, 4 MiB per job.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.data import RATE, speech_like

MiB = 1 << 20
PIECE_SECONDS = 120


def write_call(directory: Path, hours: float) -> int:
    """Both speakers' tracks of an ``hours``-long call; returns the samples per track."""
    directory.mkdir(parents=True)
    total = int(hours * 3600 * RATE)
    for seed, speaker in enumerate(("agent", "customer")):
        piece = speech_like(PIECE_SECONDS, seed=seed)
        with (directory / f"{speaker}.pcm").open("wb") as fh:
            for start in range(0, total, len(piece)):
                fh.write(piece[: total - start].astype("<i2").tobytes())
    # Placed at the first chunk's timestamp 0 with no reserve: the layout both variants read.
    (directory / "timeline.json").write_text('{"base_ms": 0, "start_ms": 0}')
    return total


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def before(tracks_dir: Path, work: Path) -> list[int]:
    """Finalize + processing as they were: whole arrays."""
    from kallrec.audio.encode import encode_mp3_to_file
    from kallrec.audio.mix import mix

    tracks = {p.stem: np.fromfile(p, dtype="<i2") for p in sorted(tracks_dir.glob("*.pcm"))}
    longest = max(len(x) for x in tracks.values())
    tracks = {name: np.pad(x, (0, longest - len(x))) for name, x in tracks.items()}
    recordings = [("mixed", mix(list(tracks.values())))]
    recordings += [(name, tracks[name]) for name in ("agent", "customer")]
    for channel, samples in recordings:
        np.ascontiguousarray(samples, dtype="<i2").tofile(work / f"{channel}.pcm")
    del tracks, recordings
    sizes = []
    for channel in ("mixed", "agent", "customer"):
        samples = np.fromfile(work / f"{channel}.pcm", dtype="<i2")
        with (work / f"{channel}.mp3").open("wb") as fh:
            sizes.append(encode_mp3_to_file(samples, fh))
        del samples
    return sizes


def after(tracks_dir: Path, work: Path) -> list[int]:
    """Today's finalize + processing: blocks."""
    from kallrec.audio.encode import encode_pcm_file
    from kallrec.live.finalize import session_channels, write_channel
    from kallrec.live.tracks import finished_tracks

    tracks = finished_tracks(tracks_dir)
    channels = session_channels(tracks, "dual")
    assert tracks is not None
    for channel in channels:
        write_channel(tracks, channel, work / f"{channel}.pcm")
    sizes = []
    for channel in channels:
        with (work / f"{channel}.mp3").open("wb") as fh:
            sizes.append(encode_pcm_file(work / f"{channel}.pcm", fh)[0])
    return sizes


def run_variant(name: str, tracks_dir: Path, work: Path, trace: bool) -> dict[str, object]:
    import kallrec.audio.encode
    import kallrec.audio.mix
    import kallrec.live.finalize  # noqa: F401  (imports are not what is measured)

    variant = {"before": before, "after": after}[name]
    rss0 = _rss()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if trace:
        tracemalloc.start()
    sizes = variant(tracks_dir, work)
    traced = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    digests = [
        hashlib.sha256((work / f"{c}.mp3").read_bytes()).hexdigest()[:16]
        for c in ("mixed", "agent", "customer")
    ]
    return {
        "variant": name,
        "rss_peak_above_start": peak - rss0,
        "traced_peak": traced,
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "mp3_bytes": sizes,
        "mp3_sha256": digests,
    }


def measure(name: str, tracks_dir: Path, trace: bool) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tracks_dir.parent))
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--run", name, str(tracks_dir), str(work)]
            + (["--trace"] if trace else []),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout)  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--run", nargs=3, metavar=("VARIANT", "TRACKS", "WORK"))
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.run:
        name, tracks_dir, work = args.run
        print(json.dumps(run_variant(name, Path(tracks_dir), Path(work), args.trace)))
        return

    root = Path(tempfile.mkdtemp(prefix="kallrec-finalize-bench-"))
    try:
        samples = write_call(root / "live" / "sess_bench", args.hours)
        tracks_dir = root / "live" / "sess_bench"
        print(
            f"{args.hours:g}-hour call: two tracks of {samples * 2 / MiB:,.0f} MiB, "
            "dual session (3 recordings)"
        )
        results = {}
        for trace in (False, True):
            for name in ("before", "after"):  # interleaved: both see the same machine
                results[name, trace] = measure(name, tracks_dir, trace)
        b, a = results["before", False], results["after", False]
        assert b["mp3_sha256"] == a["mp3_sha256"], (b["mp3_sha256"], a["mp3_sha256"])
        print(f"{'':8} {'peak RSS +':>12} {'traced peak':>12} {'CPU s':>8} {'wall s':>8}")
        for name in ("before", "after"):
            plain, traced = results[name, False], results[name, True]
            print(
                f"{name:8} {plain['rss_peak_above_start'] / MiB:>10,.1f} M"  # type: ignore[operator]
                f" {traced['traced_peak'] / MiB:>10,.1f} M"  # type: ignore[operator]
                f" {plain['cpu_seconds']:>8.1f} {plain['wall_seconds']:>8.1f}"
            )
        print(f"identical MP3s (bytes {a['mp3_bytes']}, sha256 {a['mp3_sha256']})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
