import itertools

import numpy as np
import pytest

from kallrec.audio.mix import THRESHOLD, downmix, mix, soft_limit

RNG = np.random.default_rng(7)


def noise(n: int, peak: int) -> np.ndarray:
    return RNG.integers(-peak, peak + 1, n).astype(np.int16)


def test_threshold_is_minus_3_dbfs() -> None:
    assert THRESHOLD == 23197
    assert abs(20 * np.log10(THRESHOLD / 32767) + 3) < 0.001


def test_quiet_sum_is_bit_exact() -> None:
    a, b = noise(80_000, 11_000), noise(80_000, 11_000)
    out = mix([a, b])
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, a.astype(np.int32) + b)


def test_only_samples_above_the_knee_change() -> None:
    a, b = noise(80_000, 20_000), noise(80_000, 20_000)
    total = a.astype(np.int32) + b
    out = mix([a, b])
    quiet = np.abs(total) <= THRESHOLD
    assert 0 < (~quiet).sum() < len(total)
    np.testing.assert_array_equal(out[quiet], total[quiet])
    assert np.all(np.abs(out[~quiet]) <= np.abs(total[~quiet]))
    assert np.abs(out[~quiet]).mean() < np.abs(total[~quiet]).mean() - 500
    assert np.all(np.abs(out[~quiet]) >= THRESHOLD)


def test_loud_sums_never_wrap_or_leave_int16() -> None:
    full = np.full(1000, 32767, np.int16)
    out = mix([full, full, full])
    assert np.all(out > 30_000)  # a naive int16 sum would wrap to -3 here
    neg = mix([np.full(10, -32768, np.int16)] * 2)
    assert np.all(neg < -30_000)
    a, b = noise(100_000, 32767), noise(100_000, 32767)
    total = a.astype(np.int32) + b
    out = mix([a, b])
    assert np.all(np.sign(out) == np.sign(total))
    assert np.abs(out.astype(np.int32)).max() <= 32767


def test_limiter_is_monotonic_continuous_and_symmetric() -> None:
    ramp = np.arange(0, 4 * 32768, dtype=np.int32)
    up = soft_limit(ramp).astype(np.int32)
    assert np.all(np.diff(up) >= 0)
    assert np.abs(np.diff(up)).max() <= 1  # no jump at the knee: slope ≤ 1 everywhere
    np.testing.assert_array_equal(soft_limit(-ramp).astype(np.int32), -up)
    assert up[THRESHOLD + 1] == THRESHOLD + 1  # slope 1 right at the knee
    assert up[-1] <= 32767


def test_long_tracks_mix_the_same_across_internal_blocks() -> None:
    a, b = noise(3_000_000, 30000), noise(2_500_001, 30000)
    total = a.astype(np.int32)
    total[: len(b)] += b
    np.testing.assert_array_equal(mix([a, b]), soft_limit(total))


def test_mixing_a_call_block_by_block_equals_mixing_it_whole() -> None:
    # What finalizing a live session does: any block boundaries, the same samples.
    a, b = noise(100_003, 30000), noise(100_003, 30000)
    cuts = [0, 1, 4_097, 65_536, 99_999, 100_003]
    pieces = [mix([a[x:y], b[x:y]]) for x, y in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(pieces), mix([a, b]))


def test_tracks_of_different_lengths_are_padded_with_silence() -> None:
    a = np.array([1000, 1000, 1000, 1000], np.int16)
    b = np.array([10, 20], np.int16)
    np.testing.assert_array_equal(mix([a, b]), [1010, 1020, 1000, 1000])
    np.testing.assert_array_equal(mix([b, a]), [1010, 1020, 1000, 1000])


def test_single_track_is_not_a_sum_and_is_returned_unchanged() -> None:
    a = noise(10_000, 32767)
    out = mix([a])
    np.testing.assert_array_equal(out, a)
    assert out is not a


def test_mix_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        mix([])
    with pytest.raises(ValueError):
        mix([np.zeros(4, np.float32)])
    with pytest.raises(ValueError):
        mix([np.zeros((4, 2), np.int16)])


def test_downmix_stereo_is_the_mix_of_its_columns() -> None:
    left, right = noise(5000, 30000), noise(5000, 30000)
    stereo = np.stack([left, right], axis=1)
    np.testing.assert_array_equal(downmix(stereo), mix([left, right]))
    np.testing.assert_array_equal(downmix(stereo[:, :1]), left)
    np.testing.assert_array_equal(downmix(left), left)
    with pytest.raises(ValueError):
        downmix(np.zeros((2, 2, 2), np.int16))
