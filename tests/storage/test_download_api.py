"""GET /v1/recordings/{id}/download and its signed URL, in-process (local storage)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import av
import httpx
import numpy as np
import pytest
import soundfile as sf

from kallrec import download_links, timeutil
from kallrec.audio import convert
from kallrec.lifecycle import purge_expired
from kallrec.object_keys import converted_keys
from kallrec.runtime import Runtime
from kallrec.storage.migrate import list_objects
from tests.api.helpers import import_file, ready_recording
from tests.conftest import Caller, tone, write_wav

SECONDS = 3.0
# The MP3's encoder delay and padding (no Xing header to trim them: see tests/e2e/helpers.py).
PADDING = 0.25


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    return await ready_recording(client, runtime, caller, tmp_path, seconds=SECONDS)


def download_url(rec: dict, **params: Any) -> str:
    return f"/v1/recordings/{rec['id']}/download?{urlencode(params)}"


async def follow(client: httpx.AsyncClient, caller: Caller, rec: dict, **params: Any):  # type: ignore[no-untyped-def]
    redirect = await client.get(download_url(rec, **params), headers=caller.headers)
    assert redirect.status_code == 302, redirect.text
    location = redirect.headers["location"]
    assert redirect.json()["url"] == location
    return redirect, await client.get(location)  # no key: the signature is the authorization


def assert_duration(seconds: float) -> None:
    assert SECONDS - 0.01 <= seconds <= SECONDS + PADDING, seconds


@pytest.mark.parametrize(("fmt", "rate"), [("wav", 16000), ("wav", 8000), ("ogg", 48000)])
async def test_converted_file_has_the_right_rate_duration_and_headers(
    client, caller, rec, fmt: str, rate: int
) -> None:
    redirect, response = await follow(client, caller, rec, format=fmt, sample_rate=rate)
    assert redirect.headers["cache-control"] == "private, no-store"
    expires = int(parse_qs(urlsplit(redirect.headers["location"]).query)["expires"][0])
    assert expires - timeutil.now() == pytest.approx(3600, abs=5)
    assert response.status_code == 200
    h = response.headers
    assert h["content-type"] == {"wav": "audio/wav", "ogg": "audio/ogg"}[fmt]
    assert int(h["content-length"]) == len(response.content)
    assert h["content-disposition"] == f'attachment; filename="recording-{rec["session_id"]}.{fmt}"'
    info = sf.info(io.BytesIO(response.content))
    assert info.samplerate == rate
    assert info.channels == 1
    assert info.format == {"wav": "WAV", "ogg": "OGG"}[fmt]
    assert_duration(info.duration)
    if fmt == "wav":
        assert info.subtype == "PCM_16"
        samples, _ = sf.read(io.BytesIO(response.content), dtype="float64")
        spectrum = np.abs(np.fft.rfft(samples))
        assert np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)] == pytest.approx(
            440, abs=3
        )


async def test_resampled_mp3(client, caller, rec) -> None:
    _, response = await follow(client, caller, rec, format="mp3", sample_rate=44100)
    assert response.headers["content-type"] == "audio/mpeg"
    with av.open(io.BytesIO(response.content), format="mp3") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == 44100
        frames = sum(frame.samples for frame in container.decode(stream))
    assert_duration(frames / 44100)


async def test_mp3_at_8000_is_the_recording_itself(client, caller, rec, runtime) -> None:
    _, response = await follow(client, caller, rec, format="mp3", sample_rate=8000)
    audio = await client.get(f"/v1/recordings/{rec['id']}/audio", headers=caller.headers)
    assert response.content == audio.content
    assert response.headers["content-disposition"] == audio.headers["content-disposition"]
    assert not [o for o in await list_objects(runtime.storage) if o.key.startswith("converted/")]


async def test_defaults_are_mp3_at_8000(client, caller, rec) -> None:
    redirect = await client.get(download_url(rec), headers=caller.headers)
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    assert (query["format"], query["sample_rate"]) == (["mp3"], ["8000"])


async def test_a_second_request_uses_the_cached_file(client, caller, rec, runtime, monkeypatch):
    calls = []
    real = convert.convert_mp3
    monkeypatch.setattr(convert, "convert_mp3", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    _, first = await follow(client, caller, rec, format="wav", sample_rate=22050)
    _, second = await follow(client, caller, rec, format="wav", sample_rate=22050)
    assert first.content == second.content
    assert len(calls) == 1
    keys = {o.key for o in await list_objects(runtime.storage) if o.key.startswith("converted/")}
    assert keys == {f"converted/{rec['id']}/22050.wav"}
    assert keys <= set(converted_keys(rec["id"]))  # what the reaper removes with the recording


async def test_concurrent_requests_convert_once(client, caller, rec, monkeypatch) -> None:
    calls = []
    real = convert.convert_mp3
    monkeypatch.setattr(convert, "convert_mp3", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    bodies: list[bytes] = []

    async def one() -> None:
        bodies.append(
            (await follow(client, caller, rec, format="ogg", sample_rate=16000))[1].content
        )

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
    assert len(calls) == 1
    assert len(set(bodies)) == 1
    assert sf.info(io.BytesIO(bodies[0])).samplerate == 16000


async def test_head_and_range_on_the_signed_url(client, caller, rec) -> None:
    redirect, full = await follow(client, caller, rec, format="wav", sample_rate=8000)
    location = redirect.headers["location"]
    head = await client.head(location)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    part = await client.get(location, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-109/{len(full.content)}"
    assert part.content == full.content[10:110]
    several = await client.get(location, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == full.content
    beyond = await client.get(location, headers={"Range": f"bytes={len(full.content)}-"})
    assert beyond.status_code == 416


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"format": "flac"}, "format"),
        ({"format": "wav", "sample_rate": "11025"}, "sample_rate"),
        ({"sample_rate": "abc"}, "sample_rate"),
    ],
)
async def test_invalid_parameters_are_400(client, caller, rec, params, param) -> None:
    response = await client.get(download_url(rec, **params), headers=caller.headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_processing_is_202_with_retry_after(client, caller, tmp_path) -> None:
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    rec = (await import_file(client, caller, wav)).json()
    response = await client.get(download_url(rec, format="wav"), headers=caller.headers)
    assert response.status_code == 202
    assert response.headers["retry-after"] == "2"
    assert response.json()["id"] == rec["id"] and response.json()["status"] == "processing"


async def test_unknown_foreign_and_unauthorized(client, caller, make_caller, rec) -> None:
    unknown = await client.get("/v1/recordings/rec_nope/download", headers=caller.headers)
    assert unknown.status_code == 404
    other = make_caller("other-org")
    foreign = await client.get(download_url(rec), headers=other.headers)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "resource_missing"
    reader = make_caller(scopes=("sessions:read",))
    denied = await client.get(download_url(rec), headers=reader.headers)
    assert denied.status_code == 403
    assert (await client.get(download_url(rec))).status_code == 401


async def test_expired_recording_is_410_on_both_routes(client, caller, rec, runtime) -> None:
    redirect, _ = await follow(client, caller, rec, format="wav", sample_rate=8000)
    await purge_expired(runtime, before=timeutil.parse_iso(rec["expires_at"]) + 1)
    response = await client.get(download_url(rec, format="wav"), headers=caller.headers)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "recording_expired"
    assert (await client.get(redirect.headers["location"])).status_code == 410


async def test_deleted_recording_is_404_on_the_signed_url(client, caller, rec) -> None:
    redirect, _ = await follow(client, caller, rec, format="ogg", sample_rate=8000)
    deleted = await client.delete(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert deleted.status_code == 200
    response = await client.get(redirect.headers["location"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def _tampered(location: str, **changes: str) -> str:
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v != ""}
    return f"{parts.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    "changes",
    [
        {"sample_rate": "48000"},  # another conversion than the one signed
        {"format": "mp3"},
        {"expires": "9999999999"},  # a longer life
        {"signature": "A" * 43},
        {"signature": ""},  # missing
        {"expires": "soon"},
    ],
)
async def test_altered_links_are_403_invalid_signature(client, caller, rec, changes) -> None:
    redirect, _ = await follow(client, caller, rec, format="wav", sample_rate=16000)
    response = await client.get(_tampered(redirect.headers["location"], **changes))
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "invalid_signature")


async def test_a_link_for_another_recording_is_403(client, caller, rec, runtime, tmp_path):
    (tmp_path / "2").mkdir()
    other = await ready_recording(client, runtime, caller, tmp_path / "2", seconds=1)
    redirect, _ = await follow(client, caller, rec, format="wav", sample_rate=16000)
    moved = redirect.headers["location"].replace(rec["id"], other["id"])
    assert (await client.get(moved)).status_code == 403


async def test_expired_links_are_403_expired_signature(client, runtime, rec) -> None:
    secret = download_links.signing_secret(runtime.settings)
    past = int(timeutil.now()) - 1
    response = await client.get(download_links.signed_path(secret, rec["id"], "wav", 8000, past))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "expired_signature"
    assert response.json()["error"]["param"] == "expires"


async def test_forged_links_reveal_nothing_about_existence(client) -> None:
    response = await client.get(
        "/v1/recordings/rec_nope/download/file?format=wav&sample_rate=8000&expires=9999999999"
        "&signature=x"
    )
    assert response.status_code == 403  # not 404: the signature is checked first


def test_the_secret_is_kept_in_the_data_dir_and_shared(runtime: Runtime, tmp_path: Path) -> None:
    from dataclasses import replace

    first = download_links.signing_secret(runtime.settings)
    assert len(first) == 64
    path = runtime.settings.data_dir.resolve() / download_links.SECRET_FILE
    assert path.read_bytes() == first
    assert path.stat().st_mode & 0o777 == 0o600
    download_links._secret_in.cache_clear()  # another process, same data dir
    assert download_links.signing_secret(runtime.settings) == first
    explicit = replace(runtime.settings, download_signing_secret="s3cr3t")
    assert download_links.signing_secret(explicit) == b"s3cr3t"


async def test_public_url_makes_the_location_absolute(client, caller, rec, runtime) -> None:
    from dataclasses import replace

    runtime.settings = replace(runtime.settings, public_url="https://rec.example/")
    redirect = await client.get(download_url(rec), headers=caller.headers)
    assert redirect.headers["location"].startswith("https://rec.example/v1/recordings/")
