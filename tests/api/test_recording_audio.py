"""GET/HEAD /v1/recordings/{id}/audio in-process: headers, ranges, conditionals, errors."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from kallrec.runtime import Runtime
from tests.api.helpers import import_file, ready_recording
from tests.conftest import Caller, tone, write_wav


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    return await ready_recording(client, runtime, caller, tmp_path)


@pytest.fixture
async def body(client: httpx.AsyncClient, caller: Caller, rec: dict) -> bytes:
    response = await client.get(f"/v1/recordings/{rec['id']}/audio", headers=caller.headers)
    assert response.status_code == 200
    return response.content


def url(rec: dict) -> str:
    return f"/v1/recordings/{rec['id']}/audio"


async def test_full_download_has_the_exact_headers(client, caller, rec, body) -> None:
    response = await client.get(url(rec), headers=caller.headers)
    h = response.headers
    assert h["content-type"] == "audio/mpeg"
    assert int(h["content-length"]) == rec["size"] == len(response.content) == len(body)
    assert h["content-disposition"] == f'attachment; filename="recording-{rec["session_id"]}.mp3"'
    assert h["accept-ranges"] == "bytes"
    assert h["cache-control"] == "private"
    assert re.fullmatch(r'"[0-9a-f]{64}"', h["etag"])
    assert h["last-modified"].endswith("GMT")
    assert h["x-request-id"].startswith("req_")
    assert "x-ratelimit-limit" in h


async def test_etag_is_the_sha256_of_the_body(client, caller, rec, body) -> None:
    import hashlib

    response = await client.head(url(rec), headers=caller.headers)
    assert response.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'


async def test_head_has_get_headers_and_no_body(client, caller, rec) -> None:
    head = await client.head(url(rec), headers=caller.headers)
    get = await client.get(url(rec), headers=caller.headers)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "content-disposition", "etag", "last-modified"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, None)),
        ("bytes=-500", (-500, None)),
        ("bytes=0-", (0, None)),
        ("bytes=10-10", (10, 11)),
        ("bytes=50-999999999", (50, None)),
    ],
)
async def test_single_range_returns_the_exact_slice(client, caller, rec, body, header, expected):
    start, end = expected
    want = body[start:end] if end is not None else body[start:]
    response = await client.get(url(rec), headers={**caller.headers, "Range": header})
    assert response.status_code == 206
    assert response.content == want
    first = len(body) + start if start < 0 else start
    assert response.headers["content-range"] == f"bytes {first}-{first + len(want) - 1}/{len(body)}"
    assert int(response.headers["content-length"]) == len(want)
    assert response.headers["content-type"] == "audio/mpeg"


async def test_several_ranges_come_back_as_multipart_byteranges(client, caller, rec, body):
    response = await client.get(url(rec), headers={**caller.headers, "Range": "bytes=0-9,100-199"})
    assert response.status_code == 206
    ctype = response.headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    assert int(response.headers["content-length"]) == len(response.content)
    message = message_from_bytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + response.content, policy=policy.HTTP
    )
    parts = list(message.iter_parts())
    assert [p["Content-Range"] for p in parts] == [
        f"bytes 0-9/{len(body)}",
        f"bytes 100-199/{len(body)}",
    ]
    assert [p.get_payload(decode=True) for p in parts] == [body[0:10], body[100:200]]


async def test_unsatisfiable_range_is_416_with_the_size(client, caller, rec, body):
    response = await client.get(
        url(rec), headers={**caller.headers, "Range": f"bytes={len(body)}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(body)}"
    assert response.json()["error"]["code"] == "range_not_satisfiable"


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-5", "bytes=5-2", "bytes", "bytes=--1"])
async def test_garbage_range_is_ignored(client, caller, rec, body, header):
    response = await client.get(url(rec), headers={**caller.headers, "Range": header})
    assert response.status_code == 200
    assert response.content == body


async def test_too_many_ranges_fall_back_to_the_whole_file(client, caller, rec, body):
    many = ",".join(f"{i * 20}-{i * 20 + 5}" for i in range(40))
    response = await client.get(url(rec), headers={**caller.headers, "Range": f"bytes={many}"})
    assert response.status_code == 200
    assert response.content == body


async def test_if_none_match_gives_304(client, caller, rec):
    etag = (await client.head(url(rec), headers=caller.headers)).headers["etag"]
    response = await client.get(url(rec), headers={**caller.headers, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_if_modified_since_gives_304(client, caller, rec):
    last_modified = (await client.head(url(rec), headers=caller.headers)).headers["last-modified"]
    response = await client.get(
        url(rec), headers={**caller.headers, "If-Modified-Since": last_modified}
    )
    assert response.status_code == 304


async def test_if_range_with_current_etag_gives_the_range(client, caller, rec, body):
    etag = (await client.head(url(rec), headers=caller.headers)).headers["etag"]
    response = await client.get(
        url(rec), headers={**caller.headers, "Range": "bytes=0-9", "If-Range": etag}
    )
    assert response.status_code == 206
    assert response.content == body[:10]


async def test_if_range_with_stale_etag_gives_the_whole_file(client, caller, rec, body):
    response = await client.get(
        url(rec), headers={**caller.headers, "Range": "bytes=0-9", "If-Range": '"stale"'}
    )
    assert response.status_code == 200
    assert response.content == body


async def test_if_match_mismatch_is_412(client, caller, rec):
    response = await client.get(url(rec), headers={**caller.headers, "If-Match": '"nope"'})
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "precondition_failed"


async def test_if_match_current_etag_serves(client, caller, rec, body):
    etag = (await client.head(url(rec), headers=caller.headers)).headers["etag"]
    response = await client.get(url(rec), headers={**caller.headers, "If-Match": etag})
    assert response.status_code == 200
    assert response.content == body


async def test_processing_recording_is_409_with_retry_after(client, caller, tmp_path):
    wav = write_wav(tmp_path / "call.wav", tone(2, 300))
    rec = (await import_file(client, caller, wav)).json()
    response = await client.get(url(rec), headers=caller.headers)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "recording_not_ready"
    assert response.headers["retry-after"] == str(error["retry_after"])


async def test_failed_recording_is_409_recording_failed(client, runtime, caller, tmp_path):
    wav = write_wav(tmp_path / "call.wav", tone(2, 300))
    rec = (await import_file(client, caller, wav)).json()
    runtime.repo.mark_recording_failed(rec["id"], "test")
    response = await client.get(url(rec), headers=caller.headers)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "recording_failed"


async def test_purged_recording_is_410(client, runtime, caller, rec):
    from kallrec.lifecycle import purge_expired

    await purge_expired(runtime, before=rec_expiry(rec) + 1)
    response = await client.get(url(rec), headers=caller.headers)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "recording_expired"
    meta = await client.get(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert meta.json()["status"] == "expired"
    assert meta.json()["download_url"] is None


def rec_expiry(rec: dict) -> float:
    from kallrec.timeutil import parse_iso

    return parse_iso(rec["expires_at"])


async def test_deleted_recording_is_404(client, caller, rec):
    deleted = await client.delete(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert deleted.json() == {"id": rec["id"], "object": "recording", "deleted": True}
    response = await client.get(url(rec), headers=caller.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


async def test_another_orgs_recording_is_a_plain_404(client, make_caller, rec):
    other = make_caller("globex")
    response = await client.get(url(rec), headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "recording_id"


async def test_live_key_cannot_see_test_data(client, make_caller, rec):
    live = make_caller("acme", live=True)
    response = await client.get(url(rec), headers=live.headers)
    assert response.status_code == 404


async def test_key_without_read_scope_is_403(client, make_caller, rec):
    writer = make_caller("acme", scopes=("sessions:write",))
    response = await client.get(url(rec), headers=writer.headers)
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk_test_notakey"},
        {"Authorization": "Basic abc"},
        {"X-API-Key": "sk_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
    ],
    ids=["none", "malformed", "wrong-scheme", "bad-checksum"],
)
async def test_bad_keys_are_401_with_www_authenticate(client, rec, headers):
    response = await client.get(url(rec), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "authentication_error"


async def test_revoked_key_is_401_revoked(client, runtime, caller, rec):
    from kallrec.cli.admin import revoke_key
    from kallrec.keys import parse

    revoke_key(runtime.repo, caller.key)
    parsed = parse(caller.key)
    assert parsed is not None
    runtime.auth.forget(parsed.hash)
    response = await client.get(url(rec), headers=caller.headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "revoked_api_key"


async def test_x_api_key_header_works(client, caller, rec):
    response = await client.head(url(rec), headers={"X-API-Key": caller.key})
    assert response.status_code == 200
