import io
import warnings

import numpy as np
import pytest
import soundfile as sf

from kallrec.audio.mulaw import ALAW_TABLE, MULAW_TABLE, alaw_decode, mulaw_decode, mulaw_encode

ALL_CODES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def _audioop():
    # Deprecated in 3.11 and removed in 3.13; it is the G.711 reference implementation CPython
    # shipped for decades, so use it while it exists.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pytest.importorskip("audioop")


def _soundfile_raw_decode(data: bytes, subtype: str) -> np.ndarray:
    return sf.read(
        io.BytesIO(data),
        format="RAW",
        subtype=subtype,
        samplerate=8000,
        channels=1,
        dtype="int16",
    )[0]


@pytest.mark.parametrize(
    ("code", "value"),
    [(0x00, -32124), (0x80, 32124), (0xFF, 0), (0x7F, 0), (0xFE, 8), (0x7E, -8), (0x0F, -16764)],
)
def test_mulaw_known_values(code: int, value: int) -> None:
    assert mulaw_decode(bytes([code]))[0] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0x80, 5504), (0x00, -5504)],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert alaw_decode(bytes([code]))[0] == value


def test_mulaw_decode_matches_libsndfile() -> None:
    np.testing.assert_array_equal(mulaw_decode(ALL_CODES), _soundfile_raw_decode(ALL_CODES, "ULAW"))


def test_alaw_decode_matches_libsndfile() -> None:
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), _soundfile_raw_decode(ALL_CODES, "ALAW"))


def test_decoders_match_g711_reference() -> None:
    audioop = _audioop()
    assert mulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)


def test_mulaw_encode_matches_g711_reference_for_every_int16() -> None:
    audioop = _audioop()
    assert mulaw_encode(ALL_INT16) == audioop.lin2ulaw(ALL_INT16.tobytes(), 2)


def test_mulaw_encode_agrees_with_libsndfile_up_to_rounding() -> None:
    # libsndfile rounds at segment boundaries slightly differently: allow the neighbouring code.
    buf = io.BytesIO()
    sf.write(buf, ALL_INT16, 8000, format="RAW", subtype="ULAW")
    theirs = np.frombuffer(buf.getvalue(), np.uint8)
    ours = np.frombuffer(mulaw_encode(ALL_INT16), np.uint8)
    differ = ours != theirs
    assert differ.mean() < 0.01
    assert np.all(np.abs(ours[differ].astype(int) - theirs[differ]) == 1)


def test_mulaw_round_trip_is_stable() -> None:
    decoded = mulaw_decode(ALL_CODES)
    np.testing.assert_array_equal(mulaw_decode(mulaw_encode(decoded)), decoded)
    # Every code but the "negative zero" 0x7F comes back as itself.
    codes = np.frombuffer(mulaw_encode(decoded), np.uint8)
    assert [c for c in range(256) if codes[c] != c] == [0x7F]


def test_mulaw_quantisation_error_is_bounded() -> None:
    error = np.abs(mulaw_decode(mulaw_encode(ALL_INT16)).astype(np.int32) - ALL_INT16)
    magnitude = np.abs(ALL_INT16.astype(np.int32))
    # Logarithmic steps: the error grows with the magnitude (measured: at most 9 % of it) and
    # stays below the smallest step, 8, near zero.
    assert np.all(error <= 0.1 * magnitude + 8)
    assert error[magnitude < 32].max() < 8


def test_mulaw_encode_clips_wide_integers_and_rejects_floats() -> None:
    wide = np.array([-100_000, 100_000, 0], dtype=np.int32)
    assert mulaw_encode(wide) == mulaw_encode(np.array([-32768, 32767, 0], dtype=np.int16))
    with pytest.raises(TypeError):
        mulaw_encode(np.array([0.5]))


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        MULAW_TABLE[0] = 1
    with pytest.raises(ValueError):
        ALAW_TABLE[0] = 1
