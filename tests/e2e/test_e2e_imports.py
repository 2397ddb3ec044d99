"""Imports over HTTP and through the CLI against a running server (spec §4 imports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from urllib3 import encode_multipart_formdata

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    Server,
    assert_error,
    assert_mp3_duration,
    auth,
    band_power,
    decode_mp3,
    download,
    encode_mp3_with_av,
    get_recording,
    last_lines,
    row_counts,
    speech_like,
    tmp_files,
    tone,
    upload,
    wait_ready,
    write_wav,
)

pytestmark = pytest.mark.e2e

MAX_UPLOAD = 200_000


@pytest.fixture(scope="module")
def server(module_servers: ServerFactory) -> Server:
    """This module's server accepts uploads of at most 200 kB."""
    return module_servers({"KALLREC_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)})


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.create_key("acme")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("imports")


def recording_ids(server: Server, key: str) -> list[str]:
    r = requests.get(
        server.url("/v1/recordings"), params={"limit": 100}, headers=auth(key), timeout=30
    )
    assert r.status_code == 200, r.text
    return [rec["id"] for rec in r.json()["data"]]


class NothingStored:
    """Snapshot of everything an import could leave behind."""

    def __init__(self, server: Server, key: str) -> None:
        self.server, self.key = server, key
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {
            "api list": recording_ids(self.server, self.key),
            "rows": row_counts(self.server),
            "audio/": self.server.audio_files(),
            "tmp/": tmp_files(self.server),
        }

    def check(self) -> None:
        assert self.snapshot() == self.before


# -- rejected uploads ------------------------------------------------------------------------


def _valid_wav(path: Path, seconds: float) -> Path:
    return write_wav(path, speech_like(seconds, seed=5), 8000)


def _corrupt(d: Path) -> Path:
    path = d / "corrupt.wav"
    path.write_bytes(np.random.default_rng(42).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return path


def _empty(d: Path) -> Path:
    path = d / "empty.wav"
    path.write_bytes(b"")
    return path


def _text(d: Path) -> Path:
    path = d / "notes.wav"
    path.write_text("Call notes: customer wants a refund.\n" * 200)
    return path


def _truncated(d: Path) -> Path:
    whole = _valid_wav(d / "whole.wav", 5.0).read_bytes()
    path = d / "truncated.wav"
    path.write_bytes(whole[: len(whole) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (_corrupt, 415, "unsupported_media_type"),
        (_empty, 422, "invalid_audio"),
        (_text, 415, "unsupported_media_type"),
        (_truncated, 422, "invalid_audio"),
    ],
    ids=["corrupt", "empty", "text-as-wav", "truncated-wav"],
)
def test_bad_upload_is_rejected_and_nothing_is_stored(
    server: Server, key: str, tmp_path: Path, make: Any, status: int, code: str
) -> None:
    path = make(tmp_path)
    nothing = NothingStored(server, key)
    r = upload(server, key, path, content_type="audio/wav")
    assert_error(r, status, code, error_type="invalid_request_error", param="file")
    nothing.check()


def test_oversized_upload_is_413_and_nothing_is_stored(
    server: Server, key: str, tmp_path: Path
) -> None:
    # 220 kB: over the limit, but within the multipart allowance of the Content-Length check,
    # so the server has to count the file itself.
    path = _valid_wav(tmp_path / "big.wav", 13.75)
    assert MAX_UPLOAD < path.stat().st_size < MAX_UPLOAD + 30_000
    nothing = NothingStored(server, key)
    r = upload(server, key, path)
    assert_error(r, 413, "file_too_large", param="file")
    nothing.check()


def test_far_oversized_upload_is_413_from_its_content_length(
    server: Server, key: str, tmp_path: Path
) -> None:
    path = _valid_wav(tmp_path / "huge.wav", 60.0)  # ~1 MB
    nothing = NothingStored(server, key)
    r = upload(server, key, path)
    assert_error(r, 413, "file_too_large", param="file")
    nothing.check()


def test_oversized_chunked_upload_without_length_is_413(
    server: Server, key: str, tmp_path: Path
) -> None:
    path = _valid_wav(tmp_path / "chunked.wav", 30.0)  # ~480 kB, no Content-Length sent
    body, content_type = encode_multipart_formdata(
        {"file": ("chunked.wav", path.read_bytes(), "audio/wav")}
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 16384):
            yield body[i : i + 16384]

    nothing = NothingStored(server, key)
    r = requests.post(
        server.url("/v1/recordings"),
        headers={**auth(key), "Content-Type": content_type},
        data=chunks(),
        timeout=HTTP_TIMEOUT,
    )
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(r, 413, "file_too_large", param="file")
    nothing.check()


def test_dual_channel_on_a_mono_file_is_422(server: Server, key: str, tmp_path: Path) -> None:
    path = _valid_wav(tmp_path / "mono.wav", 2.0)
    nothing = NothingStored(server, key)
    r = upload(server, key, path, data={"channel": "dual"})
    assert_error(r, 422, "invalid_audio", param="channel")
    nothing.check()


# -- accepted formats ------------------------------------------------------------------------


def _fmt_pcm16_44k(d: Path) -> Path:
    return write_wav(d / "pcm16-44k.wav", speech_like(2.0, rate=44100, seed=1), 44100)


def _fmt_alaw(d: Path) -> Path:
    return write_wav(d / "alaw.wav", speech_like(2.0, seed=2), 8000, subtype="ALAW")


def _fmt_ulaw_16k(d: Path) -> Path:
    return write_wav(d / "ulaw.wav", speech_like(2.0, rate=16000, seed=3), 16000, subtype="ULAW")


def _fmt_raw_mulaw(d: Path) -> Path:
    wav = write_wav(d / "tmp.wav", speech_like(2.0, seed=4), 8000, subtype="ULAW")
    path = d / "call.ul"
    path.write_bytes(wav.read_bytes()[-16000:])  # exactly 2 s of headerless μ-law samples
    return path


def _fmt_mp3(d: Path) -> Path:
    return encode_mp3_with_av(d / "call.mp3", speech_like(2.0, rate=22050, seed=5), 22050)


@pytest.mark.parametrize(
    "make",
    [_fmt_pcm16_44k, _fmt_alaw, _fmt_ulaw_16k, _fmt_raw_mulaw, _fmt_mp3],
    ids=["pcm16-44.1k", "alaw", "ulaw-16k", "raw-mulaw", "mp3"],
)
def test_supported_format_imports_as_2_second_8khz_mp3(
    server: Server, key: str, tmp_path: Path, make: Any
) -> None:
    r = upload(server, key, make(tmp_path))
    assert r.status_code == 202, r.text
    rec = wait_ready(server, key, r.json()["id"])
    assert rec["duration"] == pytest.approx(2.0, abs=0.06)
    decoded = decode_mp3(download(server, key, rec["id"]))
    assert (decoded.sample_rate, decoded.channels) == (8000, 1)
    assert_mp3_duration(decoded.duration, 2.0)


# -- stereo, dual ------------------------------------------------------------------------------


def _assert_tones(samples: np.ndarray, present: list[float], absent: list[float]) -> None:
    power = {f: band_power(samples, 8000, f) for f in (440.0, 1000.0)}
    strongest = max(power.values())
    for f in present:
        assert power[f] > 0.1 * strongest, (f, power)
    for f in absent:
        assert power[f] < 1e-3 * strongest, (f, power)


def test_stereo_dual_import_makes_mixed_agent_customer_on_one_session(
    server: Server, key: str, tmp_path: Path
) -> None:
    rate = 44100
    stereo = np.stack([tone(1.0, 440, rate), tone(1.0, 1000, rate)], axis=1)
    path = write_wav(tmp_path / "stereo.wav", stereo, rate)
    assert path.stat().st_size < MAX_UPLOAD

    r = upload(server, key, path, data={"channel": "dual", "metadata[crm_id]": "42"})
    assert r.status_code == 202, r.text
    first = r.json()
    session_id = first["session_id"]

    listing = requests.get(
        server.url(f"/v1/sessions/{session_id}/recordings"), headers=auth(key), timeout=30
    )
    assert listing.status_code == 200, listing.text
    recs = listing.json()["data"]
    assert sorted(rec["channel"] for rec in recs) == ["agent", "customer", "mixed"]
    assert {rec["session_id"] for rec in recs} == {session_id}
    assert first["id"] in {rec["id"] for rec in recs}

    agent_only = requests.get(
        server.url(f"/v1/sessions/{session_id}/recordings"),
        params={"channel": "agent"},
        headers=auth(key),
        timeout=30,
    ).json()["data"]
    assert [rec["channel"] for rec in agent_only] == ["agent"]

    session = requests.get(server.url(f"/v1/sessions/{session_id}"), headers=auth(key), timeout=30)
    assert session.status_code == 200
    assert session.json()["recording"]["channels"] == "dual"
    assert session.json()["metadata"] == {"crm_id": "42"}

    decoded = {}
    for rec in recs:
        ready = wait_ready(server, key, rec["id"])
        assert ready["duration"] == pytest.approx(1.0, abs=0.01)
        audio = decode_mp3(download(server, key, rec["id"]))
        assert (audio.sample_rate, audio.channels) == (8000, 1)
        decoded[rec["channel"]] = audio.samples
    _assert_tones(decoded["agent"], present=[440.0], absent=[1000.0])
    _assert_tones(decoded["customer"], present=[1000.0], absent=[440.0])
    _assert_tones(decoded["mixed"], present=[440.0, 1000.0], absent=[])


# -- the CLI against a running server --------------------------------------------------------


def test_cli_import_prints_ids_last_and_the_server_serves_them(
    server: Server, key: str, tmp_path: Path
) -> None:
    rate = 16000
    stereo = np.stack([tone(3.0, 440, rate), tone(3.0, 1000, rate)], axis=1)
    path = write_wav(tmp_path / "stereo-cli.wav", stereo, rate, subtype="PCM_16")
    done = server.cli("import", str(path), "--org", "acme", "--channel", "dual")
    assert done.returncode == 0
    ids = last_lines(done.stdout)[-3:]
    assert all(i.startswith("rec_") for i in ids), done.stdout
    channels = {}
    for rec_id in ids:
        rec = get_recording(server, key, rec_id)
        assert rec["status"] == "ready"  # the CLI waited for it
        assert rec["duration"] == pytest.approx(3.0, abs=0.01)
        body = download(server, key, rec_id)
        assert len(body) == rec["size"]
        audio = decode_mp3(body)
        assert_mp3_duration(audio.duration, 3.0)
        channels[rec["channel"]] = audio.samples
    assert set(channels) == {"mixed", "agent", "customer"}
    _assert_tones(channels["agent"], present=[440.0], absent=[1000.0])


def test_cli_import_of_a_text_file_fails_and_stores_nothing(
    server: Server, key: str, tmp_path: Path
) -> None:
    path = _text(tmp_path)
    nothing = NothingStored(server, key)
    done = server.cli("import", str(path), "--org", "acme", check=False)
    assert done.returncode != 0
    assert "rec_" not in done.stdout
    assert "error" in done.stderr.lower()
    nothing.check()


# -- idempotency and sessions ----------------------------------------------------------------


def test_import_retried_with_the_same_idempotency_key_is_replayed(
    server: Server, key: str, tmp_path: Path
) -> None:
    first_file = _valid_wav(tmp_path / "first.wav", 2.0)
    other_file = write_wav(tmp_path / "other.wav", speech_like(2.0, seed=99), 8000)
    headers = {"Idempotency-Key": "import-retry-1"}

    def post(path: Path) -> requests.Response:
        # A new multipart boundary each time, as every real client does on a retry.
        with path.open("rb") as fh:
            return requests.post(
                server.url("/v1/recordings"),
                headers={**auth(key), **headers},
                files={"file": (path.name, fh, "audio/wav")},
                timeout=HTTP_TIMEOUT,
            )

    before = recording_ids(server, key)
    first = post(first_file)
    assert first.status_code == 202, first.text
    replay = post(first_file)
    assert replay.status_code == 202, replay.text
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert len(recording_ids(server, key)) == len(before) + 1

    assert_error(post(other_file), 400, "idempotency_mismatch", param="Idempotency-Key")
    assert len(recording_ids(server, key)) == len(before) + 1


def test_import_into_an_existing_session_and_not_into_a_foreign_one(
    server: Server, key: str, tmp_path: Path
) -> None:
    created = requests.post(
        server.url("/v1/sessions"),
        headers=auth(key),
        json={"mode": "ai_agent", "metadata": {"ticket": "T-1"}},
        timeout=HTTP_TIMEOUT,
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    wav = _valid_wav(tmp_path / "attach.wav", 2.0)

    r = upload(server, key, wav, data={"session_id": session_id, "channel": "agent"})
    assert r.status_code == 202, r.text
    assert r.json()["session_id"] == session_id and r.json()["channel"] == "agent"
    rec = wait_ready(server, key, r.json()["id"])
    with requests.get(server.audio_url(rec["id"]), headers=auth(key), timeout=30) as audio:
        assert audio.status_code == 200
        assert audio.headers["Content-Disposition"] == (
            f'attachment; filename="recording-{session_id}.mp3"'
        )

    other = server.create_key("umbrella")
    nothing = NothingStored(server, key)
    foreign = upload(server, other, wav, data={"session_id": session_id})
    assert_error(foreign, 404, "resource_missing", param="session_id")
    nothing.check()
