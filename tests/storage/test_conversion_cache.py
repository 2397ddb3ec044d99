"""The conversion cache under its quota (GET …/download, in-process, local storage): what is kept,
what is evicted, and conversions streamed without being kept when there is no room."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import soundfile as sf

from kallrec import download_links, ids, timeutil
from kallrec.audio import sizes
from kallrec.converted import PIN_SECONDS
from kallrec.db.conversion_repository import ConversionRepository
from kallrec.object_keys import converted_key
from kallrec.runtime import Runtime
from kallrec.storage.migrate import list_objects
from tests.api.helpers import ready_recording
from tests.conftest import Caller

SECONDS = 3.0


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    return await ready_recording(client, runtime, caller, tmp_path, seconds=SECONDS)


@pytest.fixture
def cache(runtime: Runtime) -> ConversionRepository:
    return ConversionRepository(runtime.db)


def wav_size(rec: dict, rate: int) -> int:
    """A WAV conversion's exact size: 576-sample MP3 frames of the recording, resampled."""
    bitrate_frame = 288  # 32 kbps at 8 kHz
    samples = rec["size"] // bitrate_frame * 576
    return sizes.wav_size(sizes.resampled_samples(samples, 8000, rate))


def set_quota(runtime: Runtime, max_bytes: int) -> None:
    runtime.settings = replace(runtime.settings, conversion_cache_max_bytes=max_bytes)


async def download(
    client: httpx.AsyncClient, caller: Caller, rec: dict, fmt: str, rate: int, **headers: str
) -> httpx.Response:
    query = urlencode({"format": fmt, "sample_rate": rate})
    redirect = await client.get(
        f"/v1/recordings/{rec['id']}/download?{query}", headers=caller.headers
    )
    assert redirect.status_code == 302, redirect.text
    response = await client.get(redirect.headers["location"], headers=headers)
    assert response.status_code == 200, response.text
    return response


async def stored_conversions(runtime: Runtime) -> dict[str, int]:
    return {
        o.key: o.size for o in await list_objects(runtime.storage) if o.key.startswith("converted/")
    }


async def test_kept_conversions_stay_under_the_quota_least_recently_used_evicted(
    client, caller, rec, runtime, cache
) -> None:
    rates = (16000, 22050, 44100, 48000)
    each = {rate: wav_size(rec, rate) for rate in rates}
    # Room for 44100 and 16000 together, not for 22050 beside them; 48000 fits alone only.
    quota = each[44100] + each[16000]
    set_quota(runtime, quota)

    await download(client, caller, rec, "wav", 16000)
    await download(client, caller, rec, "wav", 22050)
    await download(client, caller, rec, "wav", 16000)  # used again: 22050 is now the oldest
    assert cache.kept_keys() == [
        converted_key(rec["id"], "wav", 22050),
        converted_key(rec["id"], "wav", 16000),
    ]
    await download(client, caller, rec, "wav", 44100)  # 22050 goes, 16000 stays
    assert cache.kept_keys() == [
        converted_key(rec["id"], "wav", 16000),
        converted_key(rec["id"], "wav", 44100),
    ]
    await download(client, caller, rec, "wav", 48000)  # both go, oldest first
    assert cache.kept_keys() == [converted_key(rec["id"], "wav", 48000)]

    stored = await stored_conversions(runtime)
    assert stored == {key: each[int(key.split("/")[-1].split(".")[0])] for key in cache.kept_keys()}
    assert sum(stored.values()) <= quota
    assert cache.usage() == (1, sum(stored.values()))


async def test_the_kept_file_is_what_was_announced(client, caller, rec, runtime) -> None:
    response = await download(client, caller, rec, "wav", 22050)
    assert int(response.headers["content-length"]) == len(response.content) == wav_size(rec, 22050)
    assert (await stored_conversions(runtime)) == {
        converted_key(rec["id"], "wav", 22050): len(response.content)
    }


async def test_a_wav_that_does_not_fit_is_streamed_with_its_length_and_not_kept(
    client, caller, rec, runtime, cache
) -> None:
    kept = await download(client, caller, rec, "wav", 48000)
    set_quota(runtime, wav_size(rec, 48000) - 1)  # the same conversion no longer fits
    cache.forget(converted_key(rec["id"], "wav", 48000))
    await runtime.storage.delete(converted_key(rec["id"], "wav", 48000))

    streamed = await download(client, caller, rec, "wav", 48000, Range="bytes=0-99")

    h = streamed.headers
    assert streamed.status_code == 200  # no ranges on a conversion made while it is sent
    assert h["content-length"] == str(len(streamed.content)) == str(wav_size(rec, 48000))
    assert h["content-type"] == "audio/wav"
    assert h["content-disposition"] == f'attachment; filename="recording-{rec["session_id"]}.wav"'
    assert h["accept-ranges"] == "none"
    assert streamed.content == kept.content  # the same bytes as a kept conversion
    assert sf.info(io.BytesIO(streamed.content)).samplerate == 48000
    assert await stored_conversions(runtime) == {}
    assert cache.usage() == (0, 0)
    assert not list((runtime.scratch).rglob("*"))  # nothing left in scratch either


@pytest.mark.parametrize(("fmt", "rate"), [("ogg", 16000), ("mp3", 44100)])
async def test_compressed_formats_that_do_not_fit_are_streamed_chunked(
    client, caller, rec, runtime, fmt: str, rate: int
) -> None:
    set_quota(runtime, 0)
    streamed = await download(client, caller, rec, fmt, rate)
    assert "content-length" not in streamed.headers  # its size is not known in advance
    assert streamed.headers["content-type"] == {"ogg": "audio/ogg", "mp3": "audio/mpeg"}[fmt]
    if fmt == "ogg":
        info = sf.info(io.BytesIO(streamed.content))
        assert (info.samplerate, info.format) == (rate, "OGG")
        assert SECONDS - 0.01 <= info.duration <= SECONDS + 0.25
    else:
        assert streamed.content[:2] == b"\xff\xfb"  # an MPEG-1 Layer III frame
    assert await stored_conversions(runtime) == {}


async def test_head_of_a_streamed_wav_announces_the_length_get_sends(
    client, caller, rec, runtime
) -> None:
    set_quota(runtime, 0)
    redirect = await client.get(
        f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000", headers=caller.headers
    )
    location = redirect.headers["location"]
    head = await client.head(location)
    body = await client.get(location)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(body.content)) == str(wav_size(rec, 16000))
    assert await stored_conversions(runtime) == {}


async def test_a_file_being_downloaded_is_not_evicted(client, caller, rec, runtime, cache) -> None:
    set_quota(runtime, wav_size(rec, 48000) + wav_size(rec, 16000))
    await download(client, caller, rec, "wav", 48000)
    key = converted_key(rec["id"], "wav", 48000)
    # A client is reading it right now (as the signed URL's handler pins it).
    now = timeutil.now()
    assert cache.use(key, ids.new_id("pin"), now, now + PIN_SECONDS) is not None

    streamed = await download(client, caller, rec, "wav", 44100)  # would need 48000's room

    assert "accept-ranges" in streamed.headers and streamed.headers["accept-ranges"] == "none"
    assert await stored_conversions(runtime) == {key: wav_size(rec, 48000)}


async def test_a_finished_download_no_longer_protects_its_file(
    client, caller, rec, runtime, cache
) -> None:
    """delete_grace_seconds is 0 in the tests: once sent, a file is evictable at once."""
    set_quota(runtime, wav_size(rec, 48000))
    await download(client, caller, rec, "wav", 48000)
    await download(client, caller, rec, "wav", 44100)  # evicts 48000: nobody reads it
    assert cache.kept_keys() == [converted_key(rec["id"], "wav", 44100)]
    assert set(await stored_conversions(runtime)) == {converted_key(rec["id"], "wav", 44100)}


async def test_a_conversion_that_outgrows_its_reservation_is_not_kept(
    client, caller, rec, runtime, monkeypatch
) -> None:
    monkeypatch.setattr(sizes, "OGG_BYTES_PER_SECOND", 1)
    monkeypatch.setattr(sizes, "OGG_SLACK_BYTES", 100)
    response = await download(client, caller, rec, "ogg", 48000)
    assert sf.info(io.BytesIO(response.content)).samplerate == 48000
    assert await stored_conversions(runtime) == {}


async def test_a_deleted_recordings_conversions_leave_the_quota(
    client, caller, rec, runtime, cache
) -> None:
    from kallrec.lifecycle import reap_files

    await download(client, caller, rec, "wav", 16000)
    assert cache.usage()[0] == 1
    deleted = await client.delete(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert deleted.status_code == 200
    await reap_files(runtime)
    assert cache.usage() == (0, 0)
    assert await stored_conversions(runtime) == {}


# -- numbers no int() should see (issue 11, item 7) ---------------------------------------------


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"sample_rate": "9" * 5000}, "sample_rate"),
        ({"sample_rate": "1" + "0" * 4999}, "sample_rate"),
        ({"sample_rate": "²"}, "sample_rate"),  # a Unicode digit int() refuses
        ({"sample_rate": "٨٠٠٠"}, "sample_rate"),  # 8000 in Arabic-Indic digits
        ({"sample_rate": " 8000"}, "sample_rate"),
        ({"format": "w" * 5000}, "format"),
    ],
)
async def test_absurd_numbers_on_download_are_400s(client, caller, rec, params, param) -> None:
    query = urlencode({"format": "wav", **params})
    response = await client.get(
        f"/v1/recordings/{rec['id']}/download?{query}", headers=caller.headers
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request",
        param,
    )
    assert len(error["message"]) < 200  # the value is not echoed whole


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"expires": "9" * 5000}, "expires"),
        ({"sample_rate": "9" * 5000}, "sample_rate"),
        ({"expires": "²"}, "expires"),
        ({"expires": "9" * 13}, "expires"),
    ],
)
async def test_absurd_numbers_on_the_signed_link_are_403_invalid_signature(
    client, caller, rec, changes: dict[str, Any], param: str
) -> None:
    redirect = await client.get(
        f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000", headers=caller.headers
    )
    parts = urlsplit(redirect.headers["location"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    response = await client.get(f"{parts.path}?{urlencode(query)}")
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_signature", param)


def test_a_long_but_genuine_expiry_still_verifies(runtime: Runtime) -> None:
    secret = download_links.signing_secret(runtime.settings)
    path = download_links.signed_path(secret, "rec_x", "wav", 8000, 99_999_999_999)
    query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
    assert download_links.verify(
        secret,
        "rec_x",
        query["format"],
        query["sample_rate"],
        query["expires"],
        query["signature"],
        timeutil.now(),
    ) == ("wav", 8000)


async def test_a_pin_is_renewed_for_as_long_as_its_download_lasts(
    client, caller, rec, runtime, cache, monkeypatch
) -> None:
    import anyio
    from sqlalchemy import select

    from kallrec import converted
    from kallrec.db import schema as t

    await download(client, caller, rec, "wav", 16000)
    key = converted_key(rec["id"], "wav", 16000)
    monkeypatch.setattr(converted, "PIN_SECONDS", 1.5)  # renewed every 0.5 s
    kept = await converted.find_or_convert(
        runtime, await runtime.get_recording(caller.org_id, False, rec["id"]), "wav", 16000
    )
    assert isinstance(kept, converted.Kept) and kept.key == key

    def until() -> float:
        with runtime.db.read() as conn:
            return conn.execute(
                select(t.conversion_pins.c.until).where(t.conversion_pins.c.id == kept.pin)
            ).scalar_one()

    first = until()
    async with converted.holding(runtime, kept):  # a download that takes a while
        await anyio.sleep(first + 1.0 - timeutil.now())
        # Past the first expiry, still pinned: no other conversion could evict it now.
        assert until() > timeutil.now()
    assert until() <= timeutil.now()  # released (delete_grace_seconds is 0 here)
