import io
import itertools
import threading

import av
import numpy as np
import pytest

from kallrec.audio.encode import (
    ALLOWED_BITRATES,
    DEFAULT_BITRATE,
    DEFAULT_QUALITY,
    encode_mp3,
    encode_mp3_blocks,
    encode_mp3_to_file,
    encode_pcm_file,
)

RATE = 8000
# MPEG-2/2.5 Layer III bitrate indexes (ISO/IEC 13818-3), written out here rather than shared
# with kallrec.audio.mpeg so the check is independent of the code under test.
BITRATE_INDEX = {16: 2, 24: 3, 32: 4, 48: 6, 64: 8}


def speechlike(seconds: float, seed: int = 1) -> np.ndarray:
    """A gliding tone with noise and pauses: exercises the encoder more than a pure sine."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 180 + 60 * np.sin(2 * np.pi * 0.7 * t)
    voiced = np.sin(2 * np.pi * np.cumsum(pitch) / RATE) + 0.1 * rng.standard_normal(len(t))
    envelope = (np.sin(2 * np.pi * 0.25 * t) > -0.3).astype(float)
    return np.round(voiced * envelope * 9000).astype(np.int16)


def decode_with_pyav(mp3: bytes) -> tuple[np.ndarray, av.audio.stream.AudioStream]:
    container = av.open(io.BytesIO(mp3))
    stream = container.streams.audio[0]
    chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    container.close()
    return np.concatenate(chunks), stream


def frame_sizes(mp3: bytes, bitrate: int) -> list[int]:
    """Walk the stream, checking each header says MPEG-2.5 Layer III, ``bitrate``, 8 kHz, mono."""
    sizes, pos = [], 0
    expected_size = 72 * bitrate * 1000 // RATE
    while pos < len(mp3):
        b = mp3[pos : pos + 4]
        assert b[0] == 0xFF and b[1] >> 5 == 0b111, f"no frame sync at {pos}"
        assert (b[1] >> 3) & 3 == 0b00, "not MPEG-2.5"
        assert (b[1] >> 1) & 3 == 0b01, "not Layer III"
        assert b[2] >> 4 == BITRATE_INDEX[bitrate], "wrong bitrate"
        assert (b[2] >> 2) & 3 == 0b10, "not 8000 Hz"
        assert b[3] >> 6 == 0b11, "not mono"
        size = expected_size + ((b[2] >> 1) & 1)
        sizes.append(size)
        pos += size
    assert pos == len(mp3)
    return sizes


def test_four_minutes_decode_back_with_an_independent_decoder() -> None:
    samples = speechlike(240.0)
    mp3 = encode_mp3(samples)
    decoded, stream = decode_with_pyav(mp3)
    assert stream.codec_context.name == "mp3float" or stream.codec_context.name.startswith("mp3")
    assert stream.sample_rate == RATE
    assert stream.layout.nb_channels == 1
    assert abs(len(decoded) / RATE - 240.0) / 240.0 < 0.005
    # 32 kbps CBR: 4,000 bytes a second.
    assert abs(len(mp3) / 4000 - 240.0) < 1.0


@pytest.mark.parametrize("bitrate", ALLOWED_BITRATES)
def test_every_frame_is_constant_bitrate(bitrate: int) -> None:
    mp3 = encode_mp3(speechlike(5.0), bitrate_kbps=bitrate)
    sizes = frame_sizes(mp3, bitrate)
    assert set(sizes) == {72 * bitrate * 1000 // RATE}  # e.g. 288 bytes at 32 kbps
    _, stream = decode_with_pyav(mp3)
    assert stream.bit_rate == bitrate * 1000


def test_the_tone_survives() -> None:
    tone = np.round(np.sin(2 * np.pi * 1000 * np.arange(2 * RATE) / RATE) * 10000).astype(np.int16)
    decoded, _ = decode_with_pyav(encode_mp3(tone))
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(len(decoded))))
    assert abs(np.argmax(spectrum) * RATE / len(decoded) - 1000) < 2
    level = np.sqrt(np.mean(decoded[4000:-4000] ** 2)) * (
        1.0 if decoded.dtype.kind == "f" else 1 / 32768
    )
    assert abs(level - 10000 / 32768 / np.sqrt(2)) < 0.02


def test_streaming_writer_matches_one_shot_and_counts_bytes() -> None:
    samples = speechlike(20.0)  # several encoder blocks
    dest = io.BytesIO()
    written = encode_mp3_to_file(samples, dest, bitrate_kbps=24, quality=DEFAULT_QUALITY)
    assert written == len(dest.getvalue()) > 0
    assert dest.getvalue() == encode_mp3(samples, bitrate_kbps=24)


def test_blocks_of_any_size_encode_like_one_array(tmp_path) -> None:  # type: ignore[no-untyped-def]
    samples = speechlike(20.0)
    cuts = [0, 1, 577, 70_000, 150_001, len(samples)]
    blocks = [samples[x:y] for x, y in itertools.pairwise(cuts)]
    whole = encode_mp3(samples, bitrate_kbps=24)
    dest = io.BytesIO()
    assert encode_mp3_blocks(iter(blocks), dest, bitrate_kbps=24) == len(whole)
    assert dest.getvalue() == whole
    pcm = tmp_path / "call.pcm"
    samples.astype("<i2").tofile(pcm)
    from_file = io.BytesIO()
    assert encode_pcm_file(pcm, from_file, bitrate_kbps=24) == (len(whole), len(samples))
    assert from_file.getvalue() == whole


def test_defaults() -> None:
    assert DEFAULT_BITRATE == 32
    assert DEFAULT_QUALITY == 7
    assert ALLOWED_BITRATES == (16, 24, 32, 48, 64)
    samples = speechlike(1.0)
    assert encode_mp3(samples) == encode_mp3(samples, bitrate_kbps=32, quality=7)


def test_byte_order_of_the_input_does_not_matter() -> None:
    samples = speechlike(2.0)
    assert encode_mp3(samples.astype(">i2")) == encode_mp3(samples)


@pytest.mark.parametrize("bitrate", [0, 8, 40, 80, 128, 320])
def test_bitrates_outside_the_allowed_set_are_refused(bitrate: int) -> None:
    with pytest.raises(ValueError, match="bitrate"):
        encode_mp3(speechlike(0.1), bitrate_kbps=bitrate)


@pytest.mark.parametrize(
    "samples",
    [np.zeros(10, np.float32), np.zeros((10, 2), np.int16), np.zeros(10, np.int32)],
    ids=["float", "stereo", "int32"],
)
def test_only_1d_int16_is_accepted(samples: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_mp3(samples)


def test_quality_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_mp3(speechlike(0.1), quality=10)


def test_threads_encode_independently() -> None:
    inputs = [speechlike(30.0, seed=s) for s in range(4)]
    expected = [encode_mp3(x) for x in inputs]
    results: list[bytes | None] = [None] * 4

    def work(i: int) -> None:
        results[i] = encode_mp3(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected
