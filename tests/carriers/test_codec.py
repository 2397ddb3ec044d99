"""Carrier payloads → 8 kHz μ-law: pass-through, G.711, linear PCM of either byte order, rates."""

from __future__ import annotations

import numpy as np
import pytest

from kallrec.audio.mulaw import mulaw_decode, mulaw_encode
from kallrec.carriers import codec
from kallrec.carriers.events import ALAW, L16, L16_BIG, MULAW, PCM8, MediaFormat


def tone(rate: int, seconds: float = 0.1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16)


def dominant(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def test_mulaw_at_8khz_passes_through_untouched() -> None:
    payload = bytes(range(256))
    assert codec.to_mulaw_8k(payload, MediaFormat(MULAW, 8000)) is payload


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("encoding", [L16, L16_BIG])
def test_linear_pcm_is_resampled_to_8khz_keeping_duration_and_pitch(
    rate: int, encoding: str
) -> None:
    pcm = tone(rate)
    raw = pcm.astype(">i2" if encoding == L16_BIG else "<i2").tobytes()
    out = mulaw_decode(codec.to_mulaw_8k(raw, MediaFormat(encoding, rate)))
    assert len(out) == pytest.approx(800, abs=1)
    assert dominant(out.astype(np.float64)) == pytest.approx(440, abs=15)


def test_alaw_and_8_bit_pcm_are_reencoded() -> None:
    from kallrec.audio.mulaw import ALAW_TABLE

    pcm = tone(8000)
    alaw = bytes(int(np.argmin(np.abs(ALAW_TABLE.astype(np.int32) - s))) for s in pcm)
    out = mulaw_decode(codec.to_mulaw_8k(alaw, MediaFormat(ALAW, 8000)))
    assert np.abs(out.astype(np.int32) - pcm).max() < 700
    u8 = ((pcm.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    out8 = mulaw_decode(codec.to_mulaw_8k(u8, MediaFormat(PCM8, 8000)))
    assert np.abs(out8.astype(np.int32) - pcm).max() < 700


def test_stereo_is_split_into_one_chunk_per_channel() -> None:
    left, right = tone(16000, freq=440), tone(16000, freq=1200)
    raw = np.stack([left, right], axis=1).astype("<i2").tobytes()
    agent, customer = codec.split(raw, MediaFormat(L16, 16000, 2))
    assert dominant(mulaw_decode(agent).astype(np.float64)) == pytest.approx(440, abs=15)
    assert dominant(mulaw_decode(customer).astype(np.float64)) == pytest.approx(1200, abs=15)
    assert mulaw_encode(np.zeros(0, dtype=np.int16)) == b""


@pytest.mark.parametrize("freq", [200.0, 440.0, 1200.0, 2000.0])
def test_the_byte_order_of_16_bit_audio_shows_in_the_audio(freq: float) -> None:
    pcm = tone(16000, seconds=0.02, freq=freq)
    assert codec.l16_byte_order(pcm.astype("<i2").tobytes()) == L16
    assert codec.l16_byte_order(pcm.astype(">i2").tobytes()) == L16_BIG


def test_too_quiet_or_too_short_to_tell() -> None:
    assert codec.l16_byte_order(bytes(640)) is None
    assert codec.l16_byte_order(b"\x01\x00" * 320) is None
    assert codec.l16_byte_order(b"\x10\x00" * 10) is None
    high = tone(16000, seconds=0.02, freq=7000.0)  # rough in either order: no verdict
    assert codec.l16_byte_order(high.astype("<i2").tobytes()) is None
