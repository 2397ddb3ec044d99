"""GET /v1/recordings/{id}/peaks: made at processing, lazily for older recordings, compact."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import delete

from kallrec.db import schema as t
from kallrec.runtime import Runtime
from tests.api.helpers import import_file
from tests.conftest import Caller, drain_jobs, write_wav


async def loud_then_quiet(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path
) -> dict:
    """Ten seconds: five loud (0.8 of full scale), five near silence."""
    t_ = np.arange(5 * 8000) / 8000
    loud = (np.sin(2 * np.pi * 300 * t_) * 0.8 * 32767).astype(np.int16)
    quiet = np.zeros(5 * 8000, dtype=np.int16)
    wav = write_wav(tmp_path / "call.wav", np.concatenate([loud, quiet]))
    response = await import_file(client, caller, wav)
    assert response.status_code == 202, response.text
    await drain_jobs(runtime)
    return response.json()


@pytest.fixture
async def rec(client, runtime, caller, tmp_path) -> dict:
    return await loud_then_quiet(client, runtime, caller, tmp_path)


def check_shape(peaks: dict, rec_id: str) -> list[int]:
    assert peaks["object"] == "peaks"
    assert peaks["recording_id"] == rec_id
    assert 9.9 < peaks["duration"] < 10.2
    data = peaks["data"]
    assert peaks["length"] == len(data) == 200  # 20 a second
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in data)
    return data


async def test_peaks_follow_the_loudness_of_the_call(client, caller, rec) -> None:
    response = await client.get(f"/v1/recordings/{rec['id']}/peaks", headers=caller.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert b" " not in response.content  # compact
    data = check_shape(response.json(), rec["id"])
    loud, quiet = data[5:95], data[105:]
    assert min(loud) > 150  # 0.8 of full scale is ~204, MP3 rounding aside
    assert max(quiet) < 10


async def test_peaks_are_stored_when_processed(client, runtime, caller, rec) -> None:
    stored = runtime.playback.get_peaks(rec["id"])
    assert stored is not None
    response = await client.get(f"/v1/recordings/{rec['id']}/peaks", headers=caller.headers)
    assert response.text == stored


async def test_older_recordings_get_their_peaks_on_first_request(client, runtime, caller, rec):
    with runtime.db.write() as conn:  # as a recording processed before peaks existed
        conn.execute(delete(t.recording_peaks))
    assert runtime.playback.get_peaks(rec["id"]) is None
    response = await client.get(f"/v1/recordings/{rec['id']}/peaks", headers=caller.headers)
    assert response.status_code == 200
    data = check_shape(response.json(), rec["id"])
    assert min(data[5:95]) > 150 and max(data[105:]) < 10  # decoded from the MP3
    assert runtime.playback.get_peaks(rec["id"]) == response.text  # and kept


async def test_peaks_revalidate_with_their_etag(client, caller, rec) -> None:
    url = f"/v1/recordings/{rec['id']}/peaks"
    first = await client.get(url, headers=caller.headers)
    again = await client.get(
        url, headers={**caller.headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""


async def test_peaks_through_a_playback_link_need_no_key(client, caller, rec) -> None:
    made = await client.post(f"/v1/recordings/{rec['id']}/links", headers=caller.headers)
    link = made.json()
    response = await client.get(link["peaks_url"], headers={"Origin": "http://elsewhere.test"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    check_shape(response.json(), rec["id"])
    tampered = link["peaks_url"].replace("signature=", "signature=x")
    assert (await client.get(tampered)).status_code == 403


async def test_peaks_of_missing_or_foreign_recordings_are_404(client, caller, make_caller, rec):
    assert (
        await client.get("/v1/recordings/rec_nope/peaks", headers=caller.headers)
    ).status_code == 404
    other = make_caller("other-org")
    response = await client.get(f"/v1/recordings/{rec['id']}/peaks", headers=other.headers)
    assert response.status_code == 404
    assert (await client.get(f"/v1/recordings/{rec['id']}/peaks")).status_code == 401


async def test_peaks_go_with_the_audio_when_a_recording_is_deleted(client, runtime, caller, rec):
    assert runtime.playback.get_peaks(rec["id"]) is not None
    await client.delete(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert runtime.playback.get_peaks(rec["id"]) is None
