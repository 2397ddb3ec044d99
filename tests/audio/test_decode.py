import struct
import tracemalloc
from pathlib import Path

import lameenc
import numpy as np
import pytest
import soundfile as sf
import soxr

import kallrec.audio
from kallrec.audio import (
    TARGET_RATE,
    AudioError,
    DecodedAudio,
    InvalidAudio,
    UnsupportedAudio,
    decode_file,
    encode_mp3,
    mulaw_decode,
)
from kallrec.audio import decode as decode_module
from kallrec.audio.decode import is_raw_mulaw_hint
from kallrec.audio.mpeg import StreamSummary, walk_frames

RNG = np.random.default_rng(20240601)
SAMPLE_CALL = Path(kallrec.audio.__file__).parent.parent / "data" / "sample-call.wav"


# ---- helpers ----------------------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def as_int16(x: np.ndarray) -> np.ndarray:
    return np.round(x * 32767).astype(np.int16)


def stereo(rate: int, seconds: float, left: float = 440.0, right: float = 1000.0) -> np.ndarray:
    return np.stack([tone(left, rate, seconds), tone(right, rate, seconds)], axis=1)


def peak_hz(x: np.ndarray, rate: int = TARGET_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def write(tmp_path: Path, name: str, data: np.ndarray, rate: int, **kwargs: str) -> Path:
    path = tmp_path / name
    sf.write(path, data, rate, **kwargs)
    return path


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def chunk(chunk_id: bytes, payload: bytes, *, size: int | None = None, pad: bool = True) -> bytes:
    header = chunk_id + struct.pack("<I", len(payload) if size is None else size)
    return header + payload + (b"\0" if pad and len(payload) % 2 else b"")


def fmt_chunk(tag: int = 1, channels: int = 1, rate: int = 8000, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits))


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM = as_int16(tone(440, 8000, 0.5))


def pcm_for(subtype: str) -> np.ndarray:
    """PCM as libsndfile stores it losslessly in ``subtype`` (it does not scale int to float)."""
    return PCM / 32768.0 if subtype in ("FLOAT", "DOUBLE") else PCM


def assert_decodes_to_pcm(path: Path) -> None:
    decoded = decode_file(path)
    assert decoded.channels == 1
    np.testing.assert_array_equal(decoded.channel(0), PCM)


# ---- WAV encodings ----------------------------------------------------------------------------


def test_pcm16_mono_8k_is_bit_exact(tmp_path: Path) -> None:
    x = as_int16(RNG.uniform(-1, 1, 8000))
    decoded = decode_file(write(tmp_path, "a.wav", x, 8000, subtype="PCM_16"))
    assert decoded.samples.shape == (8000, 1)
    assert decoded.samples.dtype == np.int16
    assert decoded.duration == 1.0
    np.testing.assert_array_equal(decoded.channel(0), x)


def test_pcm16_stereo_44k_is_resampled_keeping_channels_and_pitch(tmp_path: Path) -> None:
    decoded = decode_file(write(tmp_path, "s.wav", stereo(44100, 3.0), 44100, subtype="PCM_16"))
    assert decoded.channels == 2
    assert abs(decoded.frames - 3 * 8000) <= 2
    assert abs(peak_hz(decoded.channel(0)) - 440) < 3
    assert abs(peak_hz(decoded.channel(1)) - 1000) < 3
    # Level survives resampling (a 0.5 amplitude sine): no gain error, no clipping.
    assert abs(np.abs(decoded.channel(1)[800:-800]).max() / 32768 - 0.5) < 0.01


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 32000, 48000, 96000, 6000])
def test_common_rates_are_resampled_to_8k(tmp_path: Path, rate: int) -> None:
    decoded = decode_file(write(tmp_path, "r.wav", tone(700, rate, 2.0), rate, subtype="PCM_16"))
    assert abs(decoded.frames - 16000) <= 2
    assert abs(peak_hz(decoded.channel(0)) - 700) < 3


def test_content_above_4khz_is_filtered_not_aliased(tmp_path: Path) -> None:
    # A 6 kHz tone at 48 kHz would alias to 2 kHz if the resampler did not low-pass first.
    decoded = decode_file(write(tmp_path, "hf.wav", tone(6000, 48000, 1.0), 48000))
    # (Skip the edges: the tone starting and stopping abruptly is itself broadband.)
    assert np.abs(decoded.channel(0)[400:-400]).max() < 40


@pytest.mark.parametrize("subtype", ["PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wide_and_float_wav_decode_exactly(tmp_path: Path, subtype: str) -> None:
    # libsndfile widens int16 exactly, so these must come back bit-exact.
    assert_decodes_to_pcm(write(tmp_path, "w.wav", pcm_for(subtype), 8000, subtype=subtype))


@pytest.mark.parametrize("subtype", ["PCM_U8", "ULAW", "ALAW"])
def test_8bit_wav_matches_libsndfile(tmp_path: Path, subtype: str) -> None:
    path = write(tmp_path, "n.wav", PCM, 8000, subtype=subtype)
    reference, _ = sf.read(path, dtype="int16")
    np.testing.assert_array_equal(decode_file(path).channel(0), reference)
    assert np.abs(reference.astype(int) - PCM).max() < 1100  # and it is still our tone


def test_mulaw_wav_stereo_16k(tmp_path: Path) -> None:
    path = write(tmp_path, "u.wav", stereo(16000, 1.0), 16000, subtype="ULAW")
    decoded = decode_file(path)
    assert decoded.channels == 2
    assert abs(peak_hz(decoded.channel(0)) - 440) < 3
    assert abs(peak_hz(decoded.channel(1)) - 1000) < 3


def test_float_wav_with_nan_and_overs_is_sanitised(tmp_path: Path) -> None:
    x = np.array([0.0, np.nan, 2.0, -np.inf, 0.25] * 100, dtype=np.float32)
    decoded = decode_file(write(tmp_path, "f.wav", x, 8000, subtype="FLOAT"))
    np.testing.assert_array_equal(decoded.channel(0)[:5], [0, 0, 32767, -32768, 8192])


@pytest.mark.parametrize("fmt", ["WAVEX", "RF64"])
def test_extensible_and_rf64(tmp_path: Path, fmt: str) -> None:
    assert_decodes_to_pcm(write(tmp_path, "x.wav", PCM, 8000, format=fmt, subtype="PCM_16"))


def test_rf64_with_ds64_sizes(tmp_path: Path) -> None:
    data = PCM.tobytes()
    ds64 = chunk(b"ds64", struct.pack("<QQQI", 0, len(data), len(PCM), 0))
    body = b"WAVE" + ds64 + fmt_chunk() + chunk(b"data", data, size=0xFFFFFFFF)
    assert_decodes_to_pcm(put(tmp_path, "r.wav", b"RF64" + b"\xff" * 4 + body))


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_big_endian_rifx(tmp_path: Path, subtype: str) -> None:
    path = write(tmp_path, "b.wav", pcm_for(subtype), 8000, subtype=subtype, endian="BIG")
    assert path.read_bytes()[:4] == b"RIFX"
    assert_decodes_to_pcm(path)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "DOUBLE"])
def test_au_lossless(tmp_path: Path, subtype: str) -> None:
    assert_decodes_to_pcm(
        write(tmp_path, "a.au", pcm_for(subtype), 8000, format="AU", subtype=subtype)
    )


@pytest.mark.parametrize("subtype", ["PCM_S8", "ULAW", "ALAW"])
def test_au_8bit_matches_libsndfile(tmp_path: Path, subtype: str) -> None:
    path = write(tmp_path, "a.au", PCM, 8000, format="AU", subtype=subtype)
    reference, _ = sf.read(path, dtype="int16")
    np.testing.assert_array_equal(decode_file(path).channel(0), reference)


def test_au_with_unknown_size(tmp_path: Path) -> None:
    data = bytearray(write(tmp_path, "a.au", PCM, 8000, format="AU").read_bytes())
    data[8:12] = b"\xff\xff\xff\xff"
    assert_decodes_to_pcm(put(tmp_path, "u.au", bytes(data)))


# ---- RIFF structure ---------------------------------------------------------------------------


def test_chunks_before_data_are_skipped_including_odd_padding(tmp_path: Path) -> None:
    wav = riff(
        chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00odd!\x00"),  # odd size: padded
        fmt_chunk(),
        chunk(b"fact", struct.pack("<I", len(PCM))),
        chunk(b"junk", b"x" * 3),
        chunk(b"data", PCM.tobytes()),
        chunk(b"LIST", b"INFO trailing metadata"),
    )
    assert_decodes_to_pcm(put(tmp_path, "c.wav", wav))


def test_odd_chunk_without_pad_byte_is_tolerated(tmp_path: Path) -> None:
    wav = riff(chunk(b"bext", b"abc", pad=False), fmt_chunk(), chunk(b"data", PCM.tobytes()))
    assert_decodes_to_pcm(put(tmp_path, "p.wav", wav))


def test_format_chunk_after_data(tmp_path: Path) -> None:
    assert_decodes_to_pcm(put(tmp_path, "l.wav", riff(chunk(b"data", PCM.tobytes()), fmt_chunk())))


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_streaming_data_size_reads_to_end_of_file(tmp_path: Path, size: int) -> None:
    wav = riff(fmt_chunk(), chunk(b"data", PCM.tobytes(), size=size))
    assert_decodes_to_pcm(put(tmp_path, "s.wav", wav))


def test_wrong_riff_size_is_ignored(tmp_path: Path) -> None:
    wav = bytearray(riff(fmt_chunk(), chunk(b"data", PCM.tobytes())))
    wav[4:8] = struct.pack("<I", 12345)
    assert_decodes_to_pcm(put(tmp_path, "r.wav", bytes(wav)))


def test_one_block_of_slack_is_allowed(tmp_path: Path) -> None:
    wav = riff(fmt_chunk(), chunk(b"data", PCM.tobytes(), size=PCM.nbytes + 2))
    assert_decodes_to_pcm(put(tmp_path, "s.wav", wav))


def test_big_wav_is_decoded_in_blocks_without_seams(tmp_path: Path) -> None:
    # 12 s at 48 kHz crosses two block boundaries of the reader and of the resampler stream.
    x = stereo(48000, 12.0).astype(np.float32) * np.float32(0.9)
    path = write(tmp_path, "big.wav", x, 48000, subtype="FLOAT")
    decoded = decode_file(path)
    one_shot = soxr.resample(x, 48000, 8000, quality="HQ")
    expected = np.clip(np.rint(one_shot * 32768), -32768, 32767)
    assert decoded.samples.shape == expected.shape
    assert np.abs(decoded.samples - expected).max() <= 1


def test_peak_memory_stays_near_output_size(tmp_path: Path) -> None:
    # 60 s of 48 kHz stereo: an 11.5 MB file, 1.9 MB of 8 kHz output. Reading it whole would
    # cost the file size again plus its float copy (~35 MB); block-wise stays a few MB.
    path = write(tmp_path, "m.wav", stereo(48000, 60.0), 48000, subtype="PCM_16")
    tracemalloc.start()
    try:
        decoded = decode_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.frames == 480000
    assert peak < 10_000_000
    assert peak < path.stat().st_size


# ---- raw μ-law and hints ----------------------------------------------------------------------

RAW = bytes(RNG.integers(0, 256, 4000, dtype=np.uint8))


@pytest.mark.parametrize(
    "hint",
    [
        "call.ul",
        "CALL.ULAW",
        "rec.mulaw",
        "C:\\calls\\monday.ul",
        "audio/basic",
        "audio/x-mulaw",
        "audio/mulaw;rate=8000",
        "audio/PCMU",
        "my call.ul application/octet-stream",
        "upload.bin, audio/x-mulaw",
    ],
)
def test_raw_mulaw_with_hint(tmp_path: Path, hint: str) -> None:
    decoded = decode_file(put(tmp_path, "upload", RAW), hint=hint)
    assert decoded.channels == 1
    assert decoded.duration == 0.5
    np.testing.assert_array_equal(decoded.channel(0), mulaw_decode(RAW))


@pytest.mark.parametrize(
    "hint", [None, "", "call.wav", "audio/mpeg", "ul", "call.ul.wav", "audio/basicx", "x.ul8"]
)
def test_raw_bytes_without_mulaw_hint_are_unsupported(tmp_path: Path, hint: str | None) -> None:
    assert not is_raw_mulaw_hint(hint)
    with pytest.raises(UnsupportedAudio, match="not a WAV"):
        decode_file(put(tmp_path, "upload", RAW), hint=hint)


def test_raw_mulaw_that_happens_to_look_like_an_mpeg_header(tmp_path: Path) -> None:
    # FF FD 7A ..: near-silent μ-law samples, and also a valid MPEG-1 Layer II frame header.
    raw = b"\xff\xfd\x7a\x00" + RAW
    decoded = decode_file(put(tmp_path, "quiet.ul", raw), hint="quiet.ul")
    np.testing.assert_array_equal(decoded.channel(0), mulaw_decode(raw))


def test_magic_wins_over_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "call.ul", PCM, 8000, format="WAV", subtype="PCM_16")
    np.testing.assert_array_equal(decode_file(path, hint="call.ul audio/basic").channel(0), PCM)


def test_sample_call_ships_as_specified() -> None:
    info = sf.info(SAMPLE_CALL)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "ULAW", 8000, 1)
    assert SAMPLE_CALL.stat().st_size < 250_000
    decoded = decode_file(SAMPLE_CALL)
    assert 15 <= decoded.duration <= 25
    # Two voices taking turns: there are pauses between turns and speech around them.
    samples = decoded.channel(0).astype(float)
    frame_rms = np.sqrt((samples[: len(samples) // 400 * 400].reshape(-1, 400) ** 2).mean(axis=1))
    assert (frame_rms < 50).sum() >= 10
    assert (frame_rms > 1000).sum() >= 100


# ---- MP3 --------------------------------------------------------------------------------------


def test_mp3_from_our_encoder(tmp_path: Path) -> None:
    x = as_int16(tone(1000, 8000, 3.0))
    decoded = decode_file(put(tmp_path, "a.mp3", encode_mp3(x)))
    assert decoded.channels == 1
    # LAME adds its encoder delay and padding (~1,600 samples at 8 kHz).
    assert 24000 <= decoded.frames <= 26000
    assert abs(peak_hz(decoded.channel(0)) - 1000) < 3


def test_mp3_stereo_44k_keeps_channels(tmp_path: Path) -> None:
    path = write(tmp_path, "s.mp3", stereo(44100, 2.0), 44100, format="MP3")
    decoded = decode_file(path)
    assert decoded.channels == 2
    assert abs(decoded.duration - 2.0) < 0.2
    assert abs(peak_hz(decoded.channel(0)) - 440) < 3
    assert abs(peak_hz(decoded.channel(1)) - 1000) < 3


def id3_tag(payload: bytes) -> bytes:
    size = len(payload)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + payload


def test_mp3_with_id3_tag_and_padding(tmp_path: Path) -> None:
    mp3 = encode_mp3(as_int16(tone(500, 8000, 1.0)))
    plain = decode_file(put(tmp_path, "plain.mp3", mp3))
    tag = id3_tag(b"TIT2\x00\x00\x00\x05\x00\x00\x03Call")
    tagged = decode_file(put(tmp_path, "tagged.mp3", tag + b"\x00" * 100 + mp3))
    np.testing.assert_array_equal(tagged.samples, plain.samples)


def test_vbr_mp3_without_xing_header_is_not_mistaken_for_damage(tmp_path: Path) -> None:
    # The first frames (silence) are tiny; a size/first-bitrate estimate would be ~4x too long.
    x = np.concatenate([np.zeros(16000, np.int16), as_int16(tone(300, 8000, 4.0))])
    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(8000)
    encoder.set_channels(1)
    encoder.set_vbr(4)
    encoder.set_vbr_quality(2)
    mp3 = bytes(encoder.encode(x.tobytes())) + bytes(encoder.flush())
    assert abs(decode_file(put(tmp_path, "v.mp3", mp3)).duration - 6.0) < 0.3


def test_mp3_frame_walk_counts_audio_and_junk(tmp_path: Path) -> None:
    mp3 = encode_mp3(as_int16(tone(500, 8000, 1.0)))  # 288-byte frames of 576 samples
    damaged = mp3[:2880] + RNG.bytes(1000) + mp3[2880:]
    with open(put(tmp_path, "d.mp3", damaged), "rb") as f:
        summary = walk_frames(f, 0)
    assert summary.frames == len(mp3) // 288
    assert summary.samples == summary.frames * 576
    assert summary.junk_bytes == 1000


# ---- unusable inputs --------------------------------------------------------------------------


def valid_wav() -> bytes:
    return riff(fmt_chunk(rate=16000), chunk(b"data", as_int16(tone(440, 16000, 1.0)).tobytes()))


UNSUPPORTED = {
    "text named .wav": b"Hello, this is not audio at all.\n" * 20,
    "html": b"<!doctype html><html><body>nope</body></html>",
    "png": b"\x89PNG\r\n\x1a\n" + bytes(200),
    "avi riff": b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(8),
    "ima adpcm wav": riff(fmt_chunk(tag=0x11, bits=4), chunk(b"data", bytes(256))),
    "unknown codec wav": riff(fmt_chunk(tag=0x1234), chunk(b"data", bytes(256))),
    "3 channels": riff(fmt_chunk(channels=3), chunk(b"data", bytes(600))),
    "1 kHz rate": riff(fmt_chunk(rate=1000), chunk(b"data", bytes(600))),
    "au adpcm": b".snd" + struct.pack(">IIIII", 24, 100, 23, 8000, 1) + bytes(100),
}


@pytest.mark.parametrize("data", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_unsupported(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedAudio):
        decode_file(put(tmp_path, "call.wav", data), hint="call.wav audio/wav")


def _mp3_damaged_in_the_middle(seed: int) -> bytes:
    mp3 = encode_mp3(as_int16(tone(500, 8000, 5.0)))
    return mp3[: 288 * 20] + np.random.default_rng(seed).bytes(5000) + mp3[288 * 40 :]


INVALID = {
    "empty": (b"", "empty"),
    "truncated in half": (valid_wav()[: len(valid_wav()) // 2], "truncated: its header declares"),
    "header cut short": (valid_wav()[:30], "truncated"),
    "only riff magic": (b"RIFF\x24\x00", "truncated"),
    "riff wave then random": (b"RIFF\x00\x10\x00\x00WAVE" + RNG.bytes(4096), "corrupt"),
    "no data chunk": (riff(fmt_chunk()), "truncated"),
    "empty data chunk": (riff(fmt_chunk(), chunk(b"data", b"")), "no audio"),
    "data smaller than a frame": (riff(fmt_chunk(channels=2), chunk(b"data", b"ab")), "no audio"),
    "short fmt": (riff(chunk(b"fmt ", b"\x01\x00"), chunk(b"data", bytes(10))), "corrupt"),
    "zero channels": (riff(fmt_chunk(channels=0), chunk(b"data", bytes(10))), "zero"),
    "zero rate": (riff(fmt_chunk(rate=0), chunk(b"data", bytes(10))), "0 Hz"),
    "au truncated": (b".snd" + struct.pack(">IIIII", 24, 8000, 1, 8000, 1) + bytes(100), "trunc"),
    "au cut header": (b".snd\x00\x00", "truncated"),
    "fake id3 then random": (id3_tag(b"TIT2" + bytes(30)) + RNG.bytes(20000), "corrupt"),
    "id3 only": (id3_tag(bytes(64)), "no audio"),
    "frame header then random": (b"\xff\xe3\x48\xc4" + RNG.bytes(20000), "corrupt"),
    "single frame": (encode_mp3(np.zeros(8000, np.int16))[:288], "corrupt"),
    # mpg123 either gives up (an error) or stops early ("only 1.4 of its 3.7 seconds…"),
    # depending on the garbage; both must be reported.
    **{
        f"mp3 damaged in the middle {seed}": (_mp3_damaged_in_the_middle(seed), "corrupt")
        for seed in range(5)
    },
}


@pytest.mark.parametrize(("data", "match"), INVALID.values(), ids=INVALID.keys())
def test_invalid(tmp_path: Path, data: bytes, match: str) -> None:
    with pytest.raises(InvalidAudio, match=match):
        decode_file(put(tmp_path, "call.wav", data), hint="call.wav audio/wav")


def test_an_empty_file_is_invalid_whatever_its_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio, match="empty"):
        decode_file(put(tmp_path, "call.ul", b""), hint="call.ul audio/basic")


def test_mp3_decoding_less_than_its_frames_hold_is_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand in for mpg123 stopping early: the frame walk claims twice the audio it decodes to.
    path = put(tmp_path, "a.mp3", encode_mp3(as_int16(tone(500, 8000, 10.0))))
    with open(path, "rb") as f:
        real = walk_frames(f, 0)
    doubled = StreamSummary(real.frames * 2, real.samples * 2, 0)
    monkeypatch.setattr(decode_module, "walk_frames", lambda f, start: doubled)
    with pytest.raises(InvalidAudio, match=r"^The MP3 file is corrupt: only 10\.\d of its 20\.\d "):
        decode_file(path)


def test_truncation_message_is_precise(tmp_path: Path) -> None:
    wav = valid_wav()
    with pytest.raises(InvalidAudio) as caught:
        decode_file(put(tmp_path, "t.wav", wav[:20044]))
    assert str(caught.value) == (
        "The WAV file is truncated: its header declares 32,000 bytes of audio "
        "but only 20,000 are present."
    )


@pytest.mark.parametrize(
    "data", [*UNSUPPORTED.values(), *(d for d, _ in INVALID.values())], ids=[*UNSUPPORTED, *INVALID]
)
def test_messages_are_one_user_facing_sentence(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(AudioError) as caught:
        decode_file(put(tmp_path, "x", data))
    message = str(caught.value)
    assert message.startswith("The ")
    assert message.endswith(".")
    assert "\n" not in message
    assert "libsndfile" not in message.lower() and "error" not in message.lower()


# ---- the result type and the package surface --------------------------------------------------


def test_decoded_audio_accessors() -> None:
    samples = np.arange(16000, dtype=np.int16).reshape(8000, 2)
    decoded = DecodedAudio(samples)
    assert (decoded.frames, decoded.channels, decoded.duration) == (8000, 2, 1.0)
    right = decoded.channel(1)
    assert right.flags.c_contiguous and right.ndim == 1 and right.dtype == np.int16
    np.testing.assert_array_equal(right, samples[:, 1])
    with pytest.raises(ValueError):
        DecodedAudio(np.zeros(10, np.int16))
    with pytest.raises(ValueError):
        DecodedAudio(np.zeros((10, 1), np.float32))


def test_public_api_is_pinned() -> None:
    assert sorted(kallrec.audio.__all__) == sorted(
        [
            "ALLOWED_BITRATES",
            "DEFAULT_BITRATE",
            "DEFAULT_QUALITY",
            "TARGET_RATE",
            "AudioError",
            "DecodedAudio",
            "InvalidAudio",
            "UnsupportedAudio",
            "alaw_decode",
            "decode_file",
            "downmix",
            "encode_mp3",
            "encode_mp3_to_file",
            "mix",
            "mulaw_decode",
            "mulaw_encode",
        ]
    )
    assert issubclass(UnsupportedAudio, AudioError) and issubclass(InvalidAudio, AudioError)
