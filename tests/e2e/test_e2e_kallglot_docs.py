"""Kallglot's own documentation examples replayed against a real `kallrec serve` (issue 12, item
9): what docs/kallglot-compatibility.md says works, shown working the way a Kallglot client would
call it, with only the base URL and the key changed.

Covered here: the stream (the newer `audio.input` example, the older protocol), recordings
(list, retrieve, audio, download), webhooks (subscriptions, envelope, signature, headers,
retries), errors, rate limits, idempotency, authentication, and the routes kallrec does not
offer. Session creation, retrieval, listing and ending in all their documented shapes are in
test_e2e_kallglot_sessions.py.

Examples are quoted from the docs (https://developer.kallglot.com, both generations) and changed
only where a replay must: real ids, keys and tokens instead of the placeholders, and real μ-law
audio instead of the literal payload "base64-encoded-audio-data" (which is not base64: `-` is
outside the alphabet; kallrec answers it with session.error, see below).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import websockets

from kallrec.audio.mulaw import mulaw_encode
from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    Server,
    assert_error,
    auth,
    decode_audio,
    decode_mp3,
    dominant_frequency,
    import_ready,
    tone,
    write_wav,
)
from tests.e2e.streaming import next_message, ready_recordings
from tests.webhooks.receiver import Receiver, Respond

pytestmark = pytest.mark.e2e

ENV = {
    "KALLREC_JOB_POLL_SECONDS": "0.05",
    # Webhook receivers here are on 127.0.0.1, which kallrec refuses unless allowed (spec §9).
    "KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    # The docs' schedule (immediately, ~1 min, ~5 min, …) sped up: the headers are the point.
    "KALLREC_WEBHOOK_RETRY_SCHEDULE": "0,1,1,1,1,1,1,1",
}

# /api-reference/streaming/websocket (newer), verbatim.
DOCS_AUDIO_INPUT = """{
  "type": "audio.input",
  "sequence": 1729481920,
  "timestamp_ms": 1729481920000,
  "speaker": "customer",
  "audio": {
    "encoding": "mulaw",
    "sample_rate_hz": 8000,
    "payload": "base64-encoded-audio-data"
  }
}"""
# /webhooks/overview: every event, in the docs' order.
DOCS_EVENTS = [
    "session.created",
    "session.started",
    "session.ended",
    "transcript.ready",
    "transcript.segment",
    "recording.ready",
    "recording.failed",
    "analysis.complete",
    "analysis.failed",
    "session.provider.connected",
    "session.provider.disconnected",
]
CHUNK_MS = 160  # "Send chunks roughly 100-200 ms apart" (the docs use an en dash)
TONES = {"agent": 440.0, "customer": 1200.0}


def docs_chunks(speaker: str, count: int, first_sequence: int, first_ms: int) -> list[str]:
    """The docs' audio.input example ``count`` times (160 ms each), with real audio: the
    sequence counts on from ``first_sequence``, the timestamp advances by each chunk's length."""
    messages = []
    for i in range(count):
        t = (np.arange(8 * CHUNK_MS) + i * 8 * CHUNK_MS) / 8000
        wave = (np.sin(2 * np.pi * TONES[speaker] * t) * 12000).astype(np.int16)
        message = copy.deepcopy(json.loads(DOCS_AUDIO_INPUT))
        message["sequence"] = first_sequence + i
        message["timestamp_ms"] = first_ms + i * CHUNK_MS
        message["speaker"] = speaker
        message["audio"]["payload"] = base64.b64encode(mulaw_encode(wave)).decode()
        messages.append(json.dumps(message))
    return messages


def create_session(server: Server, key: str, **body: Any) -> dict[str, Any]:
    body = {"mode": "bidirectional_translation", **body}
    r = requests.post(server.url("/v1/sessions"), json=body, headers=auth(key), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def converse(ws: Any, session_id: str, messages: list[str], end: str) -> list[dict]:
    """session.ready, the messages, a ping (docs: pong with the session id), then ``end`` and
    the docs' session.ended; returns the session.errors received on the way."""
    assert await next_message(ws) == {"type": "session.ready", "session_id": session_id}
    for message in messages:
        await ws.send(message)
    await ws.send('{"type": "ping"}')
    errors = []
    while (reply := await next_message(ws))["type"] != "pong":
        assert reply["type"] == "session.error", reply
        errors.append(reply)
    assert reply == {"type": "pong", "session_id": session_id}
    await ws.send(end)
    ended = await next_message(ws)
    assert ended == {"type": "session.ended", "session_id": session_id, "reason": "explicit_end"}
    return errors


def wait_for(check: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def docs_verify(secret: str, header: str, body: bytes) -> int:
    """/webhooks/signatures, as its examples do it: split(',') then split('=', 2), HMAC-SHA256
    (hex) over "{timestamp}.{body}", constant-time comparison. Returns the timestamp."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    signed_payload = f"{parts['t']}.".encode() + body
    expected = hmac.new(secret.encode(), signed_payload, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), header
    return int(parts["t"])


@pytest.fixture(scope="module")
def server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers(ENV)


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.create_key("acme", mode="live")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def endpoint(server: Server, key: str, receiver: Receiver) -> dict[str, Any]:
    """An endpoint subscribed to every event Kallglot's docs list (kallrec's endpoint API is its
    own: Kallglot makes endpoints in its Developer Portal)."""
    r = requests.post(
        server.url("/v1/webhook_endpoints"),
        json={"url": receiver.url, "enabled_events": DOCS_EVENTS},
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def call(server: Server, key: str, endpoint: dict[str, Any]) -> dict[str, Any]:
    """A two-party call streamed exactly as the newer stream page shows: `?token=`, audio.input
    stamped with epoch milliseconds and a large sequence, ping, session.end."""
    session = create_session(server, key, recording={"enabled": True, "channels": "dual"})
    assert session["stream"]["token"].startswith("kst_live_")
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    start = json.loads(DOCS_AUDIO_INPUT)
    customer = docs_chunks("customer", 13, start["sequence"], start["timestamp_ms"])  # 2.08 s
    agent = docs_chunks("agent", 13, start["sequence"], start["timestamp_ms"])
    interleaved = [m for pair in zip(customer, agent, strict=True) for m in pair]

    async def stream() -> list[dict]:
        async with websockets.connect(url) as ws:
            return await converse(ws, session["id"], interleaved, '{"type": "session.end"}')

    errors = asyncio.run(stream())
    return {"session": session, "errors": errors}


@pytest.fixture(scope="module")
def recordings(server: Server, key: str, call: dict[str, Any]) -> dict[str, dict]:
    return ready_recordings(server, key, call["session"]["id"], 3)


# -- the stream, newer docs ------------------------------------------------------------------


def test_the_newer_stream_example_records_the_call_from_its_first_chunk(
    server: Server, key: str, call: dict[str, Any], recordings: dict[str, dict]
) -> None:
    # Epoch milliseconds: the recording starts at the first chunk, not at 1970 or 30 s of silence.
    assert call["errors"] == []
    for rec in recordings.values():
        assert rec["duration"] == pytest.approx(2.08, abs=0.01)  # 13 chunks of 160 ms
    r = requests.get(server.audio_url(recordings["customer"]["id"]), headers=auth(key), timeout=30)
    samples = decode_mp3(r.content).samples
    assert dominant_frequency(samples[1200:14000], 8000) == pytest.approx(1200, abs=5)


def test_the_docs_literal_placeholder_payload_is_an_error_and_the_stream_goes_on(
    server: Server, key: str
) -> None:
    # Byte for byte, the example's payload is not base64: one session.error, nothing written.
    session = create_session(server, key, recording={"enabled": True})
    url = f"{session['stream']['url']}?token={session['stream']['token']}"

    async def stream() -> list[dict]:
        async with websockets.connect(url) as ws:
            return await converse(ws, session["id"], [DOCS_AUDIO_INPUT], '{"type":"session.end"}')

    errors = asyncio.run(stream())
    assert [e["code"] for e in errors] == ["invalid_message"]
    assert "base64" in errors[0]["message"]


@pytest.mark.parametrize(
    "audio",
    [
        {"encoding": "pcm_16", "sample_rate_hz": 8000},
        {"encoding": "mulaw", "sample_rate_hz": 16000},
    ],
)
def test_anything_but_mulaw_at_8_khz_is_invalid_audio_format(
    server: Server, key: str, audio: dict[str, Any]
) -> None:
    # "Anything else responds with session.error and invalid_audio_format."
    session = create_session(server, key)
    message = json.loads(DOCS_AUDIO_INPUT)
    message["audio"].update(audio, payload=base64.b64encode(b"\xff" * 160).decode())
    url = f"{session['stream']['url']}?token={session['stream']['token']}"

    async def stream() -> list[dict]:
        async with websockets.connect(url) as ws:
            return await converse(
                ws, session["id"], [json.dumps(message)], '{"type":"session.end"}'
            )

    assert [e["code"] for e in asyncio.run(stream())] == ["invalid_audio_format"]


# -- the stream, older docs ------------------------------------------------------------------


def test_the_older_stream_protocol_header_token_control_and_end(server: Server, key: str) -> None:
    # "Header authentication (preferred)": the bare stream.url, the token in Authorization.
    session = create_session(server, key, recording={"enabled": True, "channels": "dual"})
    headers = {"Authorization": f"Bearer {session['stream']['token']}"}
    first, muted, second = (  # 0.96 s each, starting at 0, 1 and 2 s
        docs_chunks("agent", 6, 1, 0),
        docs_chunks("agent", 6, 50, 1000),
        docs_chunks("agent", 6, 100, 2000),
    )
    messages = [
        *first,
        '{"type": "control", "action": "mute"}',
        *muted,
        '{"type": "control", "action": "pause_transcription"}',
        '{"type": "control", "action": "unmute"}',
        '{"type": "control", "action": "resume_transcription"}',
        *second,
    ]

    async def stream() -> list[dict]:
        async with websockets.connect(session["stream"]["url"], additional_headers=headers) as ws:
            return await converse(ws, session["id"], messages, '{"type": "end"}')

    assert asyncio.run(stream()) == []
    agent = ready_recordings(server, key, session["id"], 3)["agent"]
    assert agent["duration"] == pytest.approx(2.96, abs=0.01)  # the muted second kept its place
    r = requests.get(server.audio_url(agent["id"]), headers=auth(key), timeout=30)
    samples = decode_mp3(r.content).samples
    rms = [float(np.sqrt((samples[i : i + 800] ** 2).mean())) for i in range(0, 23200, 800)]
    assert min(rms[2:9]) > 0.05 and max(rms[12:19]) < 0.01 and min(rms[22:28]) > 0.05


def test_the_older_query_parameter_form_works_too(server: Server, key: str) -> None:
    # "Query parameter (for browsers that don't support headers)".
    session = create_session(server, key)
    url = f"{session['stream']['url']}?token={session['stream']['token']}"

    async def stream() -> list[dict]:
        async with websockets.connect(url) as ws:
            return await converse(ws, session["id"], [], '{"type": "end"}')

    assert asyncio.run(stream()) == []


# -- recordings ------------------------------------------------------------------------------


def test_list_a_sessions_recordings(server: Server, key: str, call: dict, recordings: dict) -> None:
    session_id = call["session"]["id"]
    # curl https://api.kallglot.com/v1/sessions/sess_…/recordings -H "Authorization: Bearer …"
    r = requests.get(
        server.url(f"/v1/sessions/{session_id}/recordings"), headers=auth(key), timeout=30
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and len(body["data"]) == 3
    for rec in body["data"]:  # the newer example's fields, and the older one's channel/size
        for field in ("id", "object", "session_id", "duration", "format", "status", "created_at"):
            assert field in rec
        assert rec["object"] == "recording" and rec["session_id"] == session_id
        assert rec["format"] == "mp3" and rec["status"] == "ready"
        assert rec["size"] > 0 and rec["expires_at"].endswith("Z")
    # The older docs' ?channel= filter.
    mixed = requests.get(
        server.url(f"/v1/sessions/{session_id}/recordings?channel=mixed"),
        headers=auth(key),
        timeout=30,
    ).json()["data"]
    assert [rec["channel"] for rec in mixed] == ["mixed"]


def test_retrieve_a_recording(server: Server, key: str, recordings: dict) -> None:
    rec_id = recordings["mixed"]["id"]
    r = requests.get(server.url(f"/v1/recordings/{rec_id}"), headers=auth(key), timeout=30)
    assert r.status_code == 200
    rec = r.json()
    docs_fields = {
        "id", "object", "session_id", "channel", "status", "duration", "format", "size",
        "sample_rate", "bit_depth", "download_url", "created_at", "expires_at",
    }  # fmt: skip
    assert docs_fields <= set(rec)
    assert rec["download_url"] == f"/v1/recordings/{rec_id}/audio"  # relative, as documented
    assert (rec["sample_rate"], rec["bit_depth"], rec["format"]) == (8000, 16, "mp3")


def test_download_the_audio_as_the_docs_stream_it(
    server: Server, key: str, call: dict, recordings: dict
) -> None:
    # Python: requests.get(url, headers=…, stream=True); raise_for_status(); iter_content(8192)
    url = f"{server.base_url}{recordings['mixed']['download_url']}"
    with requests.get(url, headers=auth(key), stream=True, timeout=30) as response:
        response.raise_for_status()
        body = b"".join(response.iter_content(chunk_size=8192))
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == len(body) == recordings["mixed"]["size"]
    session_id = call["session"]["id"]
    disposition = f'attachment; filename="recording-{session_id}.mp3"'
    assert response.headers["Content-Disposition"] == disposition
    assert decode_mp3(body).sample_rate == 8000


def test_download_follows_an_absolute_location_with_curl(
    server: Server, key: str, recordings: dict, tmp_path: Path
) -> None:
    rec_id = recordings["mixed"]["id"]
    url = server.url(f"/v1/recordings/{rec_id}/download")
    redirect = requests.get(url, headers=auth(key), allow_redirects=False, timeout=30)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"{server.base_url}/v1/recordings/{rec_id}/download/file?")
    # The docs' own commands: curl -L …/download -H "Authorization: Bearer …" -o recording.mp3,
    # and the "cURL (WAV format)" tab.
    for query, name in (("", "recording.mp3"), ("?format=wav", "recording.wav")):
        out = tmp_path / name
        done = subprocess.run(
            ["curl", "-sS", "-f", "-L", url + query, "-H", f"Authorization: Bearer {key}",
             "-o", str(out)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        decoded = decode_audio(out.read_bytes())
        assert decoded.sample_rate == 8000
        assert 2.07 <= decoded.duration <= 2.08 + 0.25  # an MP3 carries encoder padding


def test_download_in_python_keeps_working_with_the_key_on_the_redirect(
    server: Server, key: str, recordings: dict
) -> None:
    # The docs' Python tab: requests.get(…/download?format=mp3, stream=True) follows the 302 and
    # sends the key again (same host): the signed URL must not mind.
    url = server.url(f"/v1/recordings/{recordings['agent']['id']}/download?format=mp3")
    with requests.get(url, headers=auth(key), stream=True, timeout=30) as response:
        response.raise_for_status()
        body = b"".join(response.iter_content(chunk_size=8192))
    assert response.history[0].status_code == 302
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == len(body)


def test_download_with_a_public_url_points_there(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_server({**ENV, "KALLREC_PUBLIC_URL": "https://rec.example.com/"})
    key = server.create_key("acme")
    rec = import_ready(server, key, write_wav(tmp_path / "c.wav", tone(1, 440, 8000), 8000))
    r = requests.get(
        server.url(f"/v1/recordings/{rec['id']}/download?format=wav"),
        headers=auth(key),
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302
    prefix = f"https://rec.example.com/v1/recordings/{rec['id']}/download/file?"
    assert r.headers["Location"].startswith(prefix) and r.json()["url"] == r.headers["Location"]


# -- webhooks --------------------------------------------------------------------------------


def test_webhooks_are_signed_and_shaped_as_documented(
    server: Server,
    key: str,
    endpoint: dict[str, Any],
    receiver: Receiver,
    call: dict,
    recordings: dict,
) -> None:
    session_id = call["session"]["id"]
    rec_ids = {rec["id"] for rec in recordings.values()}

    def mine() -> list[Any]:
        found = []
        for item in receiver.snapshot():
            event = json.loads(item.body)
            if event["data"].get("id") == session_id or event["data"].get("id") in rec_ids:
                found.append((item, event))
        return found if len(found) >= 6 else []

    received = wait_for(mine)
    types = sorted(event["type"] for _, event in received)
    assert types == sorted(
        ["session.created", "session.started", "session.ended", *["recording.ready"] * 3]
    )
    for item, event in received:
        headers = item.headers
        assert headers["content-type"].startswith("application/json")
        t = docs_verify(endpoint["secret"], headers["kallglot-signature"], item.body)
        assert abs(t - time.time()) < 120
        assert headers["kallglot-webhook-id"].startswith("wh_del_")
        assert headers["kallglot-retry-count"] == "0"
        assert int(headers["kallglot-original-timestamp"]) <= t
        assert {"id", "type", "api_version", "created_at", "data"} <= set(event)
        assert event["id"].startswith("evt_") and event["api_version"] == "v1"
        if event["type"] == "session.ended":  # the older docs' example carries the duration
            assert event["data"]["object"] == "session" and event["data"]["status"] == "ended"
            assert isinstance(event["data"]["duration"], float | int)
    # Subscribed to, never sent: transcripts, analyses, provider legs (no carrier here).
    assert not {e["type"] for _, e in received} & {
        "transcript.ready", "transcript.segment", "analysis.complete", "analysis.failed",
        "session.provider.connected", "session.provider.disconnected",
    }  # fmt: skip


def test_a_failed_delivery_is_retried_with_the_documented_headers(server: Server, key: str) -> None:
    with Receiver([Respond(500), Respond(200)]) as flaky:
        r = requests.post(
            server.url("/v1/webhook_endpoints"),
            json={"url": flaky.url, "enabled_events": ["session.created"]},
            headers=auth(key),
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        create_session(server, key)
        first, second = wait_for(lambda: flaky.snapshot()[:2] if len(flaky.snapshot()) >= 2 else [])
        requests.delete(
            server.url(f"/v1/webhook_endpoints/{r.json()['id']}"), headers=auth(key), timeout=30
        )
    assert first.answered == 500 and second.answered == 200
    assert first.body == second.body  # "Use the id field to deduplicate"
    assert [first.headers["kallglot-retry-count"], second.headers["kallglot-retry-count"]] == [
        "0",
        "1",
    ]
    assert first.headers["kallglot-webhook-id"] == second.headers["kallglot-webhook-id"]
    original = first.headers["kallglot-original-timestamp"]
    assert second.headers["kallglot-original-timestamp"] == original
    for item in (first, second):
        docs_verify(secret, item.headers["kallglot-signature"], item.body)


# -- errors, keys, rate limits, idempotency --------------------------------------------------


def test_an_unknown_key_is_the_documented_authentication_error(server: Server) -> None:
    r = requests.get(
        server.url("/v1/sessions/sess_01HXYZ123456789"),
        headers={"Authorization": "Bearer sk_live_your_api_key"},
        timeout=30,
    )
    error = assert_error(r, 401, "invalid_api_key", error_type="authentication_error")
    assert error["param"] is None  # as in the older docs' example


def test_keys_work_in_either_documented_header_and_stay_in_their_mode(
    server: Server, key: str
) -> None:
    session = create_session(server, key)
    path = server.url(f"/v1/sessions/{session['id']}")
    assert requests.get(path, headers={"X-API-Key": key}, timeout=30).status_code == 200
    test_key = server.create_key("acme", mode="test")
    assert_error(requests.get(path, headers=auth(test_key), timeout=30), 404, "resource_missing")


def test_a_missing_scope_is_a_permission_error(server: Server) -> None:
    reader = server.create_key("acme", scopes=["recordings:read"])
    r = requests.post(
        server.url("/v1/sessions"),
        json={"mode": "bidirectional_translation"},
        headers=auth(reader),
        timeout=30,
    )
    assert_error(r, 403, "insufficient_permissions", error_type="permission_error")


def test_a_missing_object_is_resource_missing(server: Server, key: str) -> None:
    r = requests.get(
        server.url("/v1/recordings/rec_01HABC987654321"), headers=auth(key), timeout=30
    )
    assert_error(r, 404, "resource_missing", error_type="invalid_request_error")


def test_the_idempotency_example_replays_and_a_different_body_is_a_mismatch(
    server: Server, key: str
) -> None:
    # /concepts/idempotency, verbatim (key and body).
    headers = {
        **auth(key),
        "Idempotency-Key": "550e8400-e29b-41d4-a716-446655440000",
        "Content-Type": "application/json",
    }
    url = server.url("/v1/sessions")
    data = '{"mode": "bidirectional_translation"}'
    first = requests.post(url, data=data, headers=headers, timeout=30)
    again = requests.post(url, data=data, headers=headers, timeout=30)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = requests.post(url, data='{"mode": "ai_agent"}', headers=headers, timeout=30)
    assert_error(other, 400, "idempotency_mismatch", error_type="invalid_request_error")
    # The older docs' key shape.
    old = {**headers, "Idempotency-Key": "unique-request-12345"}
    assert requests.post(url, data=data, headers=old, timeout=30).status_code == 201


def test_rate_limit_headers_and_the_429_body(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server({**ENV, "KALLREC_RATE_LIMIT_PER_MINUTE": "3"})
    key = server.create_key("acme")
    url = server.url("/v1/recordings")
    ok = requests.get(url, headers=auth(key), timeout=30)
    assert ok.status_code == 200
    assert ok.headers["X-RateLimit-Limit"] == "3"
    assert ok.headers["X-RateLimit-Remaining"] == "2"  # a new key's first request in its window
    assert abs(int(ok.headers["X-RateLimit-Reset"]) - time.time()) <= 61
    assert "X-API-Credits-Remaining" not in ok.headers  # billing: not offered
    # Counted per worker process on SQLite, and a window may turn over: ask until refused.
    for _ in range(12):
        limited = requests.get(url, headers=auth(key), timeout=30)
        if limited.status_code == 429:
            break
    error = assert_error(limited, 429, "rate_limit_exceeded", error_type="rate_limit_error")
    assert int(limited.headers["Retry-After"]) == error["retry_after"] > 0


# -- not offered -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/sessions/{id}/transcript", None),
        ("GET", "/v1/sessions/{id}/transcript?format=srt", None),
        (
            "POST",
            "/v1/sessions/{id}/analysis",
            {"profile": "default", "include": ["summary", "sentiment"]},
        ),
        ("GET", "/v1/analyses/anl_01HDEF456789012", None),
        ("POST", "/v1/sessions/{id}/dial", {}),
        ("GET", "/v1/agents", None),
    ],
)
def test_what_kallrec_does_not_offer_is_a_plain_404(
    server: Server, key: str, method: str, path: str, body: dict | None
) -> None:
    session = create_session(server, key)
    r = requests.request(
        method,
        server.url(path.format(id=session["id"])),
        json=body,
        headers=auth(key),
        timeout=30,
    )
    assert_error(r, 404, "route_not_found", error_type="invalid_request_error")
