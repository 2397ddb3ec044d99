"""Recording metadata, lists with cursors and filters, deletion, and imports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.api.helpers import import_file
from tests.conftest import drain_jobs, tone, write_wav


async def _import_many(client, runtime, caller, tmp_path: Path, n: int) -> list[str]:
    ids = []
    for i in range(n):
        wav = write_wav(tmp_path / f"c{i}.wav", tone(0.5, 300 + 50 * i))
        ids.append((await import_file(client, caller, wav)).json()["id"])
    await drain_jobs(runtime)
    return ids


async def test_import_answers_202_processing_then_becomes_ready(client, runtime, caller, tmp_path):
    wav = write_wav(tmp_path / "call.wav", tone(3, 440))
    response = await import_file(client, caller, wav, data={"metadata[crm_id]": "42"})
    assert response.status_code == 202
    rec = response.json()
    assert rec["status"] == "processing"
    assert rec["size"] is None and rec["download_url"] is None
    await drain_jobs(runtime)
    ready = (await client.get(f"/v1/recordings/{rec['id']}", headers=caller.headers)).json()
    assert ready["status"] == "ready"
    assert ready["download_url"] == f"/v1/recordings/{rec['id']}/audio"
    assert ready["duration"] == pytest.approx(3.0, abs=0.01)
    assert ready["format"] == "mp3" and ready["sample_rate"] == 8000 and ready["bit_depth"] == 16
    assert ready["size"] > 0
    session = await client.get(f"/v1/sessions/{rec['session_id']}", headers=caller.headers)
    assert session.json()["status"] == "ended"
    assert session.json()["metadata"] == {"crm_id": "42"}


async def test_an_import_makes_an_ended_session_pointing_at_its_mixed_recording(
    client, runtime, caller, tmp_path
):
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    rec = (await import_file(client, caller, wav)).json()
    session = await client.get(f"/v1/sessions/{rec['session_id']}", headers=caller.headers)
    assert session.json()["recording"]["id"] == rec["id"]
    assert session.json()["end_reason"] == "completed"
    await drain_jobs(runtime)
    session = await client.get(f"/v1/sessions/{rec['session_id']}", headers=caller.headers)
    assert session.json()["recording"]["duration"] == pytest.approx(1.0, abs=0.01)


async def test_import_into_an_existing_session(client, runtime, caller, tmp_path):
    session = (
        await client.post("/v1/sessions", headers=caller.headers, json={"mode": "ai_agent"})
    ).json()
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    rec = (await import_file(client, caller, wav, data={"session_id": session["id"]})).json()
    assert rec["session_id"] == session["id"]


async def test_import_into_unknown_session_is_404_and_stores_nothing(
    client, runtime, caller, tmp_path
):
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    response = await import_file(client, caller, wav, data={"session_id": "sess_nope"})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "session_id"
    assert not list((runtime.settings.data_dir / "audio").rglob("*.*"))


async def test_dual_import_makes_mixed_agent_and_customer(client, runtime, caller, tmp_path):
    stereo = np.stack([tone(2, 440), tone(2, 1000)], axis=1)
    wav = write_wav(tmp_path / "stereo.wav", stereo, rate=16000)
    response = await import_file(client, caller, wav, data={"channel": "dual"})
    assert response.status_code == 202
    body = response.json()
    assert body["channel"] == "mixed"
    assert [r["channel"] for r in body["related_recordings"]] == ["agent", "customer"]
    await drain_jobs(runtime)
    listing = await client.get(
        f"/v1/sessions/{body['session_id']}/recordings", headers=caller.headers
    )
    assert sorted(r["channel"] for r in listing.json()["data"]) == ["agent", "customer", "mixed"]
    agent = await client.get(
        f"/v1/sessions/{body['session_id']}/recordings?channel=agent", headers=caller.headers
    )
    assert [r["channel"] for r in agent.json()["data"]] == ["agent"]


async def test_dual_import_of_a_mono_file_is_422(client, caller, tmp_path):
    wav = write_wav(tmp_path / "mono.wav", tone(1, 440))
    response = await import_file(client, caller, wav, data={"channel": "dual"})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "channel"


@pytest.mark.parametrize(
    ("content", "name", "status", "code"),
    [
        (b"", "empty.wav", 422, "invalid_audio"),
        (b"hello, this is not audio at all\n" * 20, "text.wav", 415, "unsupported_media_type"),
        (bytes(range(256)) * 40, "noise.bin", 415, "unsupported_media_type"),
    ],
)
async def test_bad_uploads_are_rejected_and_nothing_is_stored(
    client, runtime, caller, tmp_path, content, name, status, code
):
    path = tmp_path / name
    path.write_bytes(content)
    response = await import_file(client, caller, path)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == "file"
    listing = await client.get("/v1/recordings", headers=caller.headers)
    assert listing.json()["data"] == []
    assert not [
        p
        for p in runtime.settings.data_dir.rglob("*")
        if p.is_file() and p.suffix in (".pcm", ".mp3", ".upload")
    ]


async def test_truncated_wav_is_422(client, caller, tmp_path):
    whole = write_wav(tmp_path / "whole.wav", tone(4, 440)).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    response = await import_file(client, caller, cut)
    assert response.status_code == 422
    assert "truncated" in response.json()["error"]["message"]


async def test_oversized_upload_is_413(tmp_path, make_caller, client, runtime):
    from dataclasses import replace

    runtime.settings = replace(runtime.settings, max_upload_bytes=10_000)
    caller = make_caller()
    wav = write_wav(tmp_path / "big.wav", tone(5, 440))
    response = await import_file(client, caller, wav)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


async def test_upload_without_file_field_is_400(client, caller):
    response = await client.post(
        "/v1/recordings", headers=caller.headers, files={"other": ("a", b"x")}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "validation_error",
        "missing_required_field",
        "file",
    )


async def test_json_upload_is_415(client, caller):
    response = await client.post("/v1/recordings", headers=caller.headers, json={"file": "x"})
    assert response.status_code == 415


async def test_list_is_newest_first_with_cursors(client, runtime, caller, tmp_path):
    ids = await _import_many(client, runtime, caller, tmp_path, 5)
    newest_first = list(reversed(ids))
    page1 = (await client.get("/v1/recordings?limit=2", headers=caller.headers)).json()
    assert page1["object"] == "list" and page1["url"] == "/v1/recordings"
    assert [r["id"] for r in page1["data"]] == newest_first[:2]
    assert page1["has_more"] is True
    page2 = (
        await client.get(
            f"/v1/recordings?limit=2&starting_after={newest_first[1]}", headers=caller.headers
        )
    ).json()
    assert [r["id"] for r in page2["data"]] == newest_first[2:4]
    last = (
        await client.get(
            f"/v1/recordings?limit=2&starting_after={newest_first[3]}", headers=caller.headers
        )
    ).json()
    assert [r["id"] for r in last["data"]] == newest_first[4:]
    assert last["has_more"] is False
    back = (
        await client.get(
            f"/v1/recordings?limit=2&ending_before={newest_first[4]}", headers=caller.headers
        )
    ).json()
    assert [r["id"] for r in back["data"]] == newest_first[2:4]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("starting_after=rec_unknown", "starting_after"),
        ("ending_before=rec_unknown", "ending_before"),
        ("channel=left", "channel"),
        ("status=gone", "status"),
        ("created[gte]=yesterday", "created[gte]"),
    ],
)
async def test_bad_list_parameters_are_400_with_param(client, caller, query, param):
    response = await client.get(f"/v1/recordings?{query}", headers=caller.headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_cursor_from_another_org_is_unknown(client, runtime, caller, make_caller, tmp_path):
    ids = await _import_many(client, runtime, caller, tmp_path, 1)
    other = make_caller("globex")
    response = await client.get(f"/v1/recordings?starting_after={ids[0]}", headers=other.headers)
    assert response.status_code == 400


async def test_list_filters(client, runtime, caller, tmp_path):
    ids = await _import_many(client, runtime, caller, tmp_path, 2)
    first = (await client.get(f"/v1/recordings/{ids[0]}", headers=caller.headers)).json()
    by_session = await client.get(
        f"/v1/recordings?session_id={first['session_id']}", headers=caller.headers
    )
    assert [r["id"] for r in by_session.json()["data"]] == [ids[0]]
    ready = await client.get("/v1/recordings?status=ready", headers=caller.headers)
    assert len(ready.json()["data"]) == 2
    future = await client.get(
        "/v1/recordings?created[gte]=2999-01-01T00:00:00Z", headers=caller.headers
    )
    assert future.json()["data"] == []
    past = await client.get("/v1/recordings?created[lt]=2999-01-01", headers=caller.headers)
    assert len(past.json()["data"]) == 2


async def test_lists_never_show_other_orgs_or_modes(client, runtime, caller, make_caller, tmp_path):
    await _import_many(client, runtime, caller, tmp_path, 2)
    for other in (make_caller("globex"), make_caller("acme", live=True)):
        listing = await client.get("/v1/recordings", headers=other.headers)
        assert listing.json()["data"] == []


async def test_delete_needs_the_delete_scope(client, runtime, caller, make_caller, tmp_path):
    ids = await _import_many(client, runtime, caller, tmp_path, 1)
    reader = make_caller(scopes=("recordings:read",))
    response = await client.delete(f"/v1/recordings/{ids[0]}", headers=reader.headers)
    assert response.status_code == 403


async def test_delete_removes_metadata_and_audio(client, runtime, caller, tmp_path):
    from kallrec.lifecycle import reap_files

    ids = await _import_many(client, runtime, caller, tmp_path, 1)
    files_before = list((runtime.settings.data_dir / "audio").rglob("*.mp3"))
    assert len(files_before) == 1
    await client.delete(f"/v1/recordings/{ids[0]}", headers=caller.headers)
    assert (await client.get(f"/v1/recordings/{ids[0]}", headers=caller.headers)).status_code == 404
    assert (
        await client.delete(f"/v1/recordings/{ids[0]}", headers=caller.headers)
    ).status_code == 404
    await reap_files(runtime)
    assert not list((runtime.settings.data_dir / "audio").rglob("*.mp3"))


async def test_retried_import_with_idempotency_key_replays(client, runtime, caller, tmp_path):
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    headers = {"Idempotency-Key": "import-1"}
    first = await import_file(client, caller, wav, headers=headers)
    second = await import_file(client, caller, wav, headers=headers)  # new multipart boundary
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    listing = await client.get("/v1/recordings", headers=caller.headers)
    assert len(listing.json()["data"]) == 1


async def test_import_metadata_with_existing_session_is_400(client, caller, tmp_path):
    session = (
        await client.post("/v1/sessions", headers=caller.headers, json={"mode": "ai_agent"})
    ).json()
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    response = await import_file(
        client, caller, wav, data={"session_id": session["id"], "metadata[a]": "b"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("validation_error", "metadata")


@pytest.mark.parametrize(
    ("data", "code", "param"),
    [
        ({"channel": "left"}, "invalid_field_value", "channel"),
        ({"colour": "red"}, "invalid_request", "colour"),
        ({"metadata[k]": "x" * 501}, "invalid_field_value", "metadata[k]"),
    ],
)
async def test_bad_import_fields_are_validation_errors(client, caller, tmp_path, data, code, param):
    wav = write_wav(tmp_path / "call.wav", tone(0.5, 440))
    response = await import_file(client, caller, wav, data=data)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("validation_error", code, param)


async def test_list_requires_auth_before_validating_filters(client):
    response = await client.get("/v1/recordings?channel=left")
    assert response.status_code == 401
