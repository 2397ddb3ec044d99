"""The API on S3 storage, in-process: streaming from S3, redirect mode, /download via S3."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from kallrec.config import Settings
from kallrec.runtime import Runtime
from kallrec.storage.s3 import S3Storage
from tests.api.helpers import ready_recording
from tests.conftest import Caller
from tests.storage.moto_s3 import MotoS3


@pytest.fixture
def settings(tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The suite's settings, with the audio in a fresh bucket of the session's moto server."""
    env = moto_s3.env(f"s3://{moto_s3.create_bucket()}/kallrec")
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # open_storage reads these when not handed settings
    return Settings.from_env(
        env,
        data_dir=tmp_path / "data",
        job_poll_seconds=0.05,
        delete_grace_seconds=0.0,
    )


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    assert isinstance(runtime.storage, S3Storage)
    return await ready_recording(client, runtime, caller, tmp_path, seconds=2)


def audio(rec: dict) -> str:
    return f"/v1/recordings/{rec['id']}/audio"


async def test_audio_streams_from_s3(client, caller, rec, runtime, moto_s3) -> None:
    response = await client.get(audio(rec), headers=caller.headers)
    assert response.status_code == 200
    storage = runtime.storage
    stored = moto_s3.read(storage.bucket, f"kallrec/recordings/{caller.org_id}/{rec['id']}.mp3")
    assert response.content == stored
    assert int(response.headers["content-length"]) == rec["size"] == len(stored)
    part = await client.get(audio(rec), headers={**caller.headers, "Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == stored[100:]
    assert not moto_s3.keys(storage.bucket).keys() & {f"kallrec/staging/{rec['id']}.pcm"}


async def test_redirect_mode(client, caller, rec, runtime) -> None:
    runtime.settings = replace(runtime.settings, s3_redirect="307")
    response = await client.get(audio(rec), headers=caller.headers)
    assert response.status_code == 307
    assert response.headers["cache-control"] == "private, no-store"
    location = response.headers["location"]
    assert "X-Amz-Expires=300" in location and "response-content-disposition=" in location
    async with httpx.AsyncClient() as s3_client:
        full = await s3_client.get(location)
        part = await s3_client.get(location, headers={"Range": "bytes=0-99"})
    assert full.headers["content-type"] == "audio/mpeg"
    assert full.headers["content-disposition"] == (
        f'attachment; filename="recording-{rec["session_id"]}.mp3"'
    )
    assert len(full.content) == rec["size"]
    assert part.status_code == 206 and part.content == full.content[:100]

    # Everything kallrec can answer without the bytes is still answered here.
    head = await client.head(audio(rec), headers=caller.headers)
    assert head.status_code == 200 and head.headers["content-length"] == str(rec["size"])
    etag = head.headers["etag"]
    cached = await client.get(audio(rec), headers={**caller.headers, "If-None-Match": etag})
    assert cached.status_code == 304
    assert (await client.get(audio(rec))).status_code == 401


async def test_download_presigns_the_converted_object(client, caller, rec, runtime, moto_s3):
    runtime.settings = replace(runtime.settings, s3_redirect="302")
    url = f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000"
    response = await client.get(url, headers=caller.headers)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(moto_s3.endpoint) and "X-Amz-Expires=3600" in location
    async with httpx.AsyncClient() as s3_client:
        wav = await s3_client.get(location)
    assert wav.headers["content-type"] == "audio/wav"
    assert wav.headers["content-disposition"] == (
        f'attachment; filename="recording-{rec["session_id"]}.wav"'
    )
    assert int(wav.headers["content-length"]) == len(wav.content)
    assert sf.info(io.BytesIO(wav.content)).samplerate == 16000
    assert f"kallrec/converted/{rec['id']}/16000.wav" in moto_s3.keys(runtime.storage.bucket)


async def test_download_in_redirect_mode_without_room_links_to_a_streamed_conversion(
    client, caller, rec, runtime, moto_s3
) -> None:
    """No object to presign when the cache has no room: the 302 goes to kallrec's own signed
    link, which converts while it sends (reading the recording from S3 by ranges)."""
    runtime.settings = replace(runtime.settings, s3_redirect="302", conversion_cache_max_bytes=0)
    url = f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000"
    response = await client.get(url, headers=caller.headers)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"http://kallrec.test/v1/recordings/{rec['id']}/download/file?")
    wav = await client.get(location)
    assert wav.status_code == 200 and wav.headers["accept-ranges"] == "none"
    assert int(wav.headers["content-length"]) == len(wav.content)
    assert sf.info(io.BytesIO(wav.content)).samplerate == 16000
    assert not [k for k in moto_s3.keys(runtime.storage.bucket) if "/converted/" in k]


async def test_download_without_redirect_streams_the_s3_object(client, caller, rec) -> None:
    url = f"/v1/recordings/{rec['id']}/download?format=ogg&sample_rate=22050"
    response = await client.get(url, headers=caller.headers)
    assert response.status_code == 302
    assert response.headers["location"].startswith(
        f"http://kallrec.test/v1/recordings/{rec['id']}/download/file?"
    )
    ogg = await client.get(response.headers["location"])
    assert ogg.status_code == 200 and ogg.headers["content-type"] == "audio/ogg"
    assert sf.info(io.BytesIO(ogg.content)).samplerate == 22050


async def test_readyz_checks_s3(client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["storage"] == "ok"
