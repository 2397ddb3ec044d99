"""kallrec.audio.peaks: bucket maxima, bounded counts, any block size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kallrec.audio import peaks as p


def test_each_peak_is_the_loudest_sample_of_its_stretch() -> None:
    samples = np.zeros(8000, dtype=np.int16)  # one second: 20 peaks of 400 samples
    samples[450] = 32767
    samples[1300] = -32768
    data = p.peaks_of(samples, 8000)
    assert len(data) == 20
    assert data[1] == 255 and data[3] == 255
    assert sum(data) == 510


def test_the_count_is_bounded_whatever_the_length() -> None:
    assert p.peak_count(8000 * 2 * 3600, 8000) == p.MAX_PEAKS
    assert p.peak_count(8000 * 10, 8000) == 200
    assert p.peak_count(1, 8000) == 1


def test_a_file_read_in_blocks_gives_the_peaks_of_the_whole(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(8000 * 30) * 4000).astype(np.int16)
    path = tmp_path / "call.pcm"
    samples.astype("<i2").tofile(path)
    monkeypatch.setattr(p, "_BLOCK_SAMPLES", 12_345)  # blocks that never align with buckets
    data = p.peaks_of_pcm_file(path, 8000)
    count = len(data)
    bucket = np.arange(len(samples)) * count // len(samples)
    widened = np.abs(samples.astype(np.int32))
    naive = [int(widened[bucket == b].max()) for b in range(count)]
    assert data == [min(255, (v * 255 + 16383) // 32767) for v in naive]
