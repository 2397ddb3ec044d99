"""Playback links in-process: made with a key, played without one, exactly like /audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from kallrec import timeutil
from kallrec.cli.admin import revoke_key
from kallrec.runtime import Runtime
from tests.api.helpers import ready_recording
from tests.conftest import Caller

BASE = "http://kallrec.test"


@pytest.fixture
async def rec(client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path) -> dict:
    return await ready_recording(client, runtime, caller, tmp_path)


async def make_link(
    client: httpx.AsyncClient, caller: Caller, rec: dict, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/recordings/{rec['id']}/links", headers=caller.headers, json=body
    )
    assert response.status_code == 201, response.text
    return response.json()


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


async def test_a_link_plays_the_same_bytes_as_audio_without_a_key(client, caller, rec) -> None:
    link = await make_link(client, caller, rec, expires_in=600)
    assert link["object"] == "playback_link"
    assert link["id"].startswith("lnk_")
    assert link["recording_id"] == rec["id"]
    assert link["disposition"] == "inline"
    assert link["url"].startswith(f"{BASE}/v1/playback/{link['id']}/audio?")
    assert abs(timeutil.parse_iso(link["expires_at"]) - timeutil.now() - 600) < 5
    audio = await client.get(f"/v1/recordings/{rec['id']}/audio", headers=caller.headers)
    played = await client.get(link["url"])  # no key
    assert played.status_code == 200
    assert played.content == audio.content
    for name in ("content-type", "content-length", "etag", "last-modified", "accept-ranges"):
        assert played.headers[name] == audio.headers[name]
    expected = f'inline; filename="recording-{rec["session_id"]}.mp3"'
    assert played.headers["content-disposition"] == expected
    # Revalidated at every use, so that a revoked link stops playing from a browser's cache.
    assert played.headers["cache-control"] == "private, no-cache"


async def test_an_attachment_link_says_attachment(client, caller, rec) -> None:
    link = await make_link(client, caller, rec, disposition="attachment")
    played = await client.get(link["url"])
    assert played.headers["content-disposition"].startswith("attachment; filename=")


async def test_a_link_has_the_range_semantics_of_audio(client, caller, rec) -> None:
    link = await make_link(client, caller, rec)
    whole = (await client.get(link["url"])).content
    part = await client.get(link["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    middle = len(whole) // 2
    tail = await client.get(link["url"], headers={"Range": f"bytes={middle}-"})
    assert tail.status_code == 206 and tail.content == whole[middle:]
    multi = await client.get(link["url"], headers={"Range": "bytes=0-9,20-29"})
    assert multi.status_code == 206
    assert multi.headers["content-type"].startswith("multipart/byteranges; boundary=")
    outside = await client.get(link["url"], headers={"Range": f"bytes={len(whole) + 10}-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(whole)}"


async def test_a_link_answers_head_304_and_if_range_like_audio(client, caller, rec) -> None:
    link = await make_link(client, caller, rec)
    head = await client.head(link["url"])
    assert head.status_code == 200 and head.content == b""
    etag = head.headers["etag"]
    assert (await client.get(link["url"], headers={"If-None-Match": etag})).status_code == 304
    stale = await client.get(link["url"], headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200  # If-Range that does not match: the whole file
    fresh = await client.get(link["url"], headers={"Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and len(fresh.content) == 10
    assert (await client.get(link["url"], headers={"If-Match": '"other"'})).status_code == 412


async def test_link_urls_carry_cors_and_audio_does_not(client, caller, rec) -> None:
    link = await make_link(client, caller, rec)
    origin = {"Origin": "http://elsewhere.test"}
    played = await client.get(link["url"], headers={**origin, "Range": "bytes=0-9"})
    assert played.headers["access-control-allow-origin"] == "*"
    assert "Content-Range" in played.headers["access-control-expose-headers"]
    refused = await client.get(with_query(link["url"], signature="x"), headers=origin)
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "*"  # the page may read why
    preflight = await client.options(
        link["url"],
        headers={
            **origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert preflight.status_code == 204
    assert "Range" in preflight.headers["access-control-allow-headers"]
    malformed = await client.options("/v1/playback/not-a-link/audio", headers=origin)
    assert malformed.status_code == 404
    assert malformed.json()["error"]["param"] == "link_id"
    audio = await client.get(
        f"/v1/recordings/{rec['id']}/audio", headers={**caller.headers, **origin}
    )
    assert "access-control-allow-origin" not in audio.headers
    for path in ("/v1/recordings", f"/v1/recordings/{rec['id']}/peaks", "/healthz"):
        answer = await client.get(path, headers={**caller.headers, **origin})
        assert "access-control-allow-origin" not in answer.headers, path


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "AAAA"},
        {"expires": "9999999999"},
        {"expires": "1" * 40},
        {"expires": "-5"},
    ],
)
async def test_a_tampered_link_is_a_403_envelope(client, caller, rec, change) -> None:
    link = await make_link(client, caller, rec)
    response = await client.get(with_query(link["url"], **change))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error"
    assert error["code"] == "invalid_signature"


async def test_a_link_of_another_id_or_without_its_signature_is_refused(client, caller, rec):
    one = await make_link(client, caller, rec)
    two = await make_link(client, caller, rec)
    swapped = one["url"].replace(one["id"], two["id"])
    assert (await client.get(swapped)).json()["error"]["code"] == "invalid_signature"
    bare = one["url"].split("?")[0]
    assert (await client.get(bare)).status_code == 403


async def test_an_expired_link_is_a_403(client, caller, rec, monkeypatch) -> None:
    link = await make_link(client, caller, rec, expires_in=60)
    assert (await client.get(link["url"])).status_code == 200  # verified once, then remembered
    later = timeutil.now() + 61
    monkeypatch.setattr(timeutil, "now", lambda: later)
    response = await client.get(link["url"])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "expired_signature"


async def test_a_revoked_link_is_refused_and_others_still_play(client, caller, rec) -> None:
    one = await make_link(client, caller, rec)
    two = await make_link(client, caller, rec)
    assert (await client.get(one["url"])).status_code == 200  # cached as alive
    revoked = await client.delete(
        f"/v1/recordings/{rec['id']}/links/{one['id']}", headers=caller.headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await client.get(one["url"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "link_revoked"
    assert (await client.get(two["url"])).status_code == 200


async def test_revoking_an_unknown_or_foreign_link_is_a_404(client, caller, make_caller, rec):
    link = await make_link(client, caller, rec)
    other = make_caller("other-org")
    for headers, link_id in ((caller.headers, "lnk_nope"), (other.headers, link["id"])):
        response = await client.delete(
            f"/v1/recordings/{rec['id']}/links/{link_id}", headers=headers
        )
        assert response.status_code == 404
        assert response.json()["error"]["param"] == "link_id"
    assert (await client.get(link["url"])).status_code == 200


async def test_revoking_the_key_kills_its_links(client, runtime, make_caller, tmp_path) -> None:
    maker = make_caller()
    rec = await ready_recording(client, runtime, maker, tmp_path)
    link = await make_link(client, maker, rec)
    assert (await client.get(link["url"])).status_code == 200
    revoke_key(runtime.repo, maker.key)
    runtime.announce_change()  # what `kallrec keys revoke` does
    refused = await client.get(link["url"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "link_revoked"


async def test_a_link_to_a_deleted_recording_is_a_404(client, caller, rec) -> None:
    link = await make_link(client, caller, rec)
    await client.delete(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    response = await client.get(link["url"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


async def test_a_link_to_a_purged_recording_is_a_410(client, runtime, caller, rec) -> None:
    from kallrec.lifecycle import purge_expired

    link = await make_link(client, caller, rec)
    await purge_expired(runtime, before=timeutil.parse_iso(rec["expires_at"]) + 1)
    response = await client.get(link["url"])
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "recording_expired"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": 7 * 86400 + 1}, "expires_in"),
        ({"expires_in": "3600"}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"expires_in": 1.5}, "expires_in"),
        ({"disposition": "download"}, "disposition"),
        ({"color": "red"}, "color"),
    ],
)
async def test_a_bad_link_request_is_a_400_naming_the_field(client, caller, rec, body, param):
    response = await client.post(
        f"/v1/recordings/{rec['id']}/links", headers=caller.headers, json=body
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_a_week_is_the_longest_link(client, caller, rec) -> None:
    link = await make_link(client, caller, rec, expires_in=7 * 86400)
    assert (await client.get(link["url"])).status_code == 200


async def test_links_need_recordings_read_and_a_visible_recording(client, make_caller, rec):
    writer = make_caller(scopes=("sessions:write",))
    response = await client.post(f"/v1/recordings/{rec['id']}/links", headers=writer.headers)
    assert response.status_code == 403
    stranger = make_caller("other-org")
    response = await client.post(f"/v1/recordings/{rec['id']}/links", headers=stranger.headers)
    assert response.status_code == 404
    assert (await client.post(f"/v1/recordings/{rec['id']}/links")).status_code == 401
