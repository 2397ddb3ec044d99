"""Kallglot's documented session examples replayed against a real `kallrec serve` (issue 12,
items 1-4, 6 and 7): creating (the newer `routing`, the older nested `provider` object, language
codes, `ai_agent`, metadata), retrieving, listing and ending sessions, and the errors the docs
name, the way a Kallglot client sends them, with only the base URL and the key changed.

Bodies are quoted from the docs (https://developer.kallglot.com, both generations; see
docs/kallglot-compatibility.md); ids, keys and tokens are the server's own. Where the docs'
example answers show values kallrec cannot have (a carrier resolved from an organization's
default route, ids of the docs' account), the answer is compared by shape and by what kallrec
documents instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websockets

from kallrec.audio.mulaw import mulaw_encode
from tests.e2e.helpers import HTTP_TIMEOUT, Server, assert_error, auth, tone
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.e2e

ENV = {
    "KALLREC_JOB_POLL_SECONDS": "0.05",
    # The webhook receiver here is on 127.0.0.1, which kallrec refuses unless allowed (spec §9).
    "KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
}

# -- the docs' bodies, verbatim ------------------------------------------------------------------

# /api-reference/sessions/create (newer): the curl's -d.
NEWER_CREATE = '{"mode": "bidirectional_translation"}'
# Its answer (ids, token and times are the docs' account's).
NEWER_CREATE_ANSWER = {
    "id": "sess_01HXYZ123456789",
    "object": "session",
    "status": "created",
    "mode": "bidirectional_translation",
    "provider": "twilio",
    "phone_number": "+14155551234",
    "source_language": None,
    "target_language": None,
    "stream": {
        "url": "wss://api.kallglot.com/v1/sessions/sess_01HXYZ123456789/connect",
        "token": "kst_live_xxxxxxxxxxxxxxxx",
        "expires_at": "2026-03-26T12:00:00Z",
    },
    "recording": {"enabled": False},
    "metadata": None,
    "created_at": "2026-03-26T11:00:00Z",
}
# /api-reference/sessions/create (older): the curl's -d.
OLDER_CREATE = """{
    "mode": "bidirectional_translation",
    "source_language": "de",
    "target_language": "en",
    "provider": {
      "type": "twilio",
      "phone_number": "+14155551234"
    },
    "recording": {
      "enabled": true,
      "channels": "dual"
    },
    "metadata": {
      "customer_id": "cust_123",
      "ticket_id": "ticket_456"
    }
  }"""
# /quickstart (older).
QUICKSTART_CREATE = """{
    "mode": "bidirectional_translation",
    "source_language": "de",
    "target_language": "en",
    "metadata": {
      "external_call_id": "call_abc123"
    }
  }"""
# /guides/choose-telephony-integration and /concepts/providers (newer).
ROUTING_PHONE = {
    "mode": "bidirectional_translation",
    "source_language": "de",
    "target_language": "en",
    "routing": {"phone_number": "+19788006140"},
}
ROUTING_CONNECTION = {
    "mode": "bidirectional_translation",
    "source_language": "de",
    "target_language": "en",
    "routing": {"connection_id": "pcon_01HXYZ", "direction": "inbound"},
}
# /api-reference/sessions/create (newer): `routing.type: "sip"` + its `sip` example.
ROUTING_SIP = {
    "mode": "bidirectional_translation",
    "routing": {"type": "sip", "sip": {"from_uri": "sip:alice@example.com"}},
}
# /concepts/session-modes (both generations).
MODES = [
    {"mode": "bidirectional_translation", "source_language": "de", "target_language": "en"},
    {"mode": "assistive_translation", "source_language": "de", "target_language": "en"},
]
# /guides/ai-agents (older, JavaScript): the same object as JSON, tools written out.
AI_AGENT_CREATE = {
    "mode": "ai_agent",
    "source_language": "en",
    "target_language": "en",
    "ai_agent": {
        "system_prompt": "You are a helpful customer service agent for Acme Corp.\n"
        "You assist customers with order inquiries, returns, and general questions.\n"
        "Be friendly, professional, and concise.\n"
        "If you cannot help with something, offer to transfer to a human agent.",
        "voice": "alloy",
        "temperature": 0.7,
        "knowledge_base_id": "kb_01ABC123",
        "tools": [
            {
                "name": "lookup_order",
                "description": "Look up an order by order number or customer email",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "order_number": {
                            "type": "string",
                            "description": "The order number (e.g., ORD-12345)",
                        },
                        "email": {"type": "string", "description": "Customer email address"},
                    },
                },
            },
            {
                "name": "transfer_to_human",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "department": {
                            "type": "string",
                            "enum": ["support", "sales", "billing"],
                        }
                    },
                },
            },
        ],
    },
}
# The older guides' nested provider objects (/guides/twilio, /guides/telnyx, /guides/sip).
OLDER_GUIDES = [
    (
        {
            "mode": "bidirectional_translation",
            "source_language": "en",
            "target_language": "de",
            "provider": {"type": "twilio", "call_sid": "CA1234567890abcdef"},
            "metadata": {"from": "+14155550100", "to": "+14155551234", "direction": "inbound"},
        },
        "twilio",
    ),
    (
        {
            "mode": "bidirectional_translation",
            "source_language": "en",
            "target_language": "de",
            "provider": {"type": "telnyx", "call_control_id": "v3:abcdef"},
            "metadata": {"from": "+14155550100", "to": "+14155551234", "direction": "incoming"},
        },
        "telnyx",
    ),
    (
        {
            "mode": "bidirectional_translation",
            "source_language": "de",
            "target_language": "en",
            "provider": {"type": "sip", "transport": "tls", "codecs": ["PCMU", "PCMA", "opus"]},
            "metadata": {"caller_id": "+4930123456", "internal_call_id": "pbx-42"},
        },
        "sip",
    ),
]
# /api-reference/sessions/end (older): the curl's -d.
OLDER_END = """{
    "reason": "completed"
  }"""
END_REASONS = ("completed", "customer_hangup", "agent_hangup", "error", "timeout")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers(ENV)


@pytest.fixture(scope="module")
def key(server: Server, receiver: Receiver) -> str:
    key = server.create_key("acme", mode="live")
    r = requests.post(
        server.url("/v1/webhook_endpoints"),
        json={"url": receiver.url, "enabled_events": ["recording.failed", "session.ended"]},
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 201, r.text
    return key


def post_raw(server: Server, key: str, path: str, data: str, **headers: str) -> requests.Response:
    return requests.post(
        server.url(path),
        data=data.encode(),
        headers={**auth(key), "Content-Type": "application/json", **headers},
        timeout=HTTP_TIMEOUT,
    )


def created(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def same_shape(ours: Any, docs: Any, where: str = "") -> None:
    """Every key of the docs' answer is in ours, with a value of the same JSON type (a docs
    null may be anything; a docs string may be null where kallrec documents why)."""
    if isinstance(docs, dict):
        assert isinstance(ours, dict), (where, ours)
        for name, value in docs.items():
            assert name in ours, f"{where}.{name} missing"
            same_shape(ours[name], value, f"{where}.{name}")
    elif docs is not None and ours is not None:
        kind = (int, float) if isinstance(docs, int | float) else type(docs)
        assert isinstance(ours, kind), (where, ours, docs)


# -- create --------------------------------------------------------------------------------------


def test_the_newer_create_example_with_curl(server: Server, key: str) -> None:
    # As the page shows it: curl, Bearer key, JSON, an Idempotency-Key from uuidgen.
    result = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", server.url("/v1/sessions"),
            "-H", f"Authorization: Bearer {key}",
            "-H", "Content-Type: application/json",
            "-H", f"Idempotency-Key: {uuid.uuid4()}",
            "-d", NEWER_CREATE,
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "201", result.stdout
    session = json.loads(body)
    same_shape(session, NEWER_CREATE_ANSWER)
    assert (session["status"], session["mode"]) == ("created", "bidirectional_translation")
    # No routing, and kallrec has no default route to resolve one from: both null.
    assert session["provider"] is None and session["phone_number"] is None
    assert session["source_language"] is None and session["target_language"] is None
    assert session["recording"]["enabled"] is False  # as the docs' answer: not unless asked
    assert session["metadata"] is None
    assert session["stream"]["token"].startswith("kst_live_")
    assert session["stream"]["url"].endswith(f"/v1/sessions/{session['id']}/connect")


def test_the_older_create_example_with_its_provider_object(server: Server, key: str) -> None:
    r = post_raw(server, key, "/v1/sessions", OLDER_CREATE, **{"Idempotency-Key": "unique-1"})
    session = created(r)
    # The newer answer's shape: provider a string, phone_number beside it.
    assert (session["provider"], session["phone_number"]) == ("twilio", "+14155551234")
    assert (session["source_language"], session["target_language"]) == ("de", "en")
    assert session["recording"]["enabled"] is True
    assert session["recording"]["channels"] == "dual"
    assert session["metadata"] == {"customer_id": "cust_123", "ticket_id": "ticket_456"}
    again = post_raw(server, key, "/v1/sessions", OLDER_CREATE, **{"Idempotency-Key": "unique-1"})
    assert again.status_code == 201 and again.json() == session


def test_the_quickstart_create_example(server: Server, key: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", QUICKSTART_CREATE))
    assert session["metadata"] == {"external_call_id": "call_abc123"}
    assert session["stream"]["token"].startswith("kst_live_")


@pytest.mark.parametrize(
    ("body", "provider", "phone_number"),
    [
        (ROUTING_PHONE, None, "+19788006140"),
        (ROUTING_CONNECTION, None, None),
        (ROUTING_SIP, "sip", None),
    ],
    ids=["phone_number", "connection_id", "sip"],
)
def test_the_newer_routing_examples(
    server: Server, key: str, body: dict[str, Any], provider: str | None, phone_number: str | None
) -> None:
    session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
    assert (session["provider"], session["phone_number"]) == (provider, phone_number)
    assert session["routing"] == body["routing"]
    got = requests.get(
        server.url(f"/v1/sessions/{session['id']}"), headers=auth(key), timeout=HTTP_TIMEOUT
    ).json()
    assert (got["provider"], got["phone_number"], got["routing"]) == (
        provider,
        phone_number,
        body["routing"],
    )


@pytest.mark.parametrize(("body", "provider"), OLDER_GUIDES, ids=["twilio", "telnyx", "sip"])
def test_the_older_guides_provider_objects(
    server: Server, key: str, body: dict[str, Any], provider: str
) -> None:
    session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
    assert session["provider"] == provider and session["routing"] == body["provider"]
    assert session["metadata"] == body["metadata"]


@pytest.mark.parametrize("body", [*MODES, AI_AGENT_CREATE], ids=["bidi", "assistive", "ai_agent"])
def test_the_session_modes_examples(server: Server, key: str, body: dict[str, Any]) -> None:
    session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
    assert session["mode"] == body["mode"]
    assert session["source_language"] == body["source_language"]
    # Stored and echoed, not acted on: kallrec records, it runs no agent.
    assert session["ai_agent"] == body.get("ai_agent")


def test_language_codes_with_regions_and_scripts(server: Server, key: str) -> None:
    body = {"mode": "bidirectional_translation", "source_language": "pt-BR"}
    for code in ("pt-BR", "en-US", "zh-Hant", "es-419"):
        body = {**body, "target_language": code}
        session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
        assert session["target_language"] == code


def test_metadata_keeps_numbers_and_booleans(server: Server, key: str) -> None:
    metadata = {"customer_id": "123", "attempt": 2, "score": 0.75, "vip": True}
    body = {"mode": "bidirectional_translation", "metadata": metadata}
    session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
    assert session["metadata"] == metadata
    got = requests.get(
        server.url(f"/v1/sessions/{session['id']}"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert got.json()["metadata"] == metadata


def test_an_organization_can_record_by_default(server: Server) -> None:
    key = server.create_key("recorder", mode="live")
    server.cli("orgs", "update", "recorder", "--record-by-default")
    session = created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))
    assert session["recording"]["enabled"] is True
    server.cli("orgs", "update", "recorder", "--no-record-by-default")
    assert created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))["recording"] == {
        "enabled": False,
        "channels": "mixed",
        "id": None,
        "duration": None,
    }


# -- retrieve and list ---------------------------------------------------------------------------


def test_retrieve_has_every_field_of_the_newer_example(server: Server, key: str) -> None:
    docs = {
        "id": "sess_01HXYZ123456789",
        "object": "session",
        "status": "active",
        "mode": "bidirectional_translation",
        "provider": "twilio",
        "phone_number": "+14155551234",
        "source_language": "de",
        "target_language": "en",
        "stream": {
            "url": "wss://api.kallglot.com/v1/sessions/sess_01HXYZ123456789/connect",
            "token": "kst_live_xxxxxxxx",
            "expires_at": "2026-03-26T12:00:00Z",
        },
        "recording": {"enabled": True},
        "metadata": {"customer_id": "123"},
        "created_at": "2026-03-26T11:00:00Z",
        "started_at": "2026-03-26T11:00:15Z",
        "ended_at": None,
    }
    body = {
        "mode": "bidirectional_translation",
        "source_language": "de",
        "target_language": "en",
        "routing": {"type": "twilio", "phone_number": "+14155551234"},
        "recording": {"enabled": True},
        "metadata": {"customer_id": "123"},
    }
    session = created(post_raw(server, key, "/v1/sessions", json.dumps(body)))
    got = requests.get(
        server.url(f"/v1/sessions/{session['id']}"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert got.status_code == 200
    same_shape(got.json(), docs)
    assert {k: got.json()[k] for k in ("provider", "phone_number", "metadata")} == {
        "provider": "twilio",
        "phone_number": "+14155551234",
        "metadata": {"customer_id": "123"},
    }


def test_the_older_pagination_example_lists_sessions(server: Server) -> None:
    key = server.create_key("lister", mode="live")
    made = [created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))["id"] for _ in range(12)]
    first = requests.get(server.url("/v1/sessions"), headers=auth(key), timeout=HTTP_TIMEOUT)
    assert first.status_code == 200
    page = first.json()
    assert (page["object"], page["has_more"], page["url"]) == ("list", False, "/v1/sessions")
    assert [s["id"] for s in page["data"]] == made[::-1]  # newest first, default limit 20
    # The docs' curl: ?limit=10&starting_after=<an id>.
    r = requests.get(
        server.url(f"/v1/sessions?limit=10&starting_after={made[-1]}"),
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200
    assert [s["id"] for s in r.json()["data"]] == made[-2::-1][:10] and r.json()["has_more"]
    assert all(s["object"] == "session" for s in r.json()["data"])
    ended = requests.get(
        server.url("/v1/sessions?status=ended"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert ended.json()["data"] == []


# -- end -----------------------------------------------------------------------------------------


def test_the_newer_end_example_no_body_no_content_type(server: Server, key: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))
    # The page's curl: -X POST and the key, nothing else.
    result = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", server.url(f"/v1/sessions/{session['id']}/end"),
            "-H", f"Authorization: Bearer {key}",
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "200", result.stdout
    ended = json.loads(body)
    docs = {
        "id": "sess_01HXYZ123456789",
        "object": "session",
        "status": "ended",
        "duration_seconds": 245.3,
        "ended_at": "2026-03-26T11:04:20Z",
    }
    same_shape(ended, docs)
    assert ended["status"] == "ended" and ended["end_reason"] == "completed"
    assert ended["duration_seconds"] == ended["duration"] >= 0
    # "Idempotent - calling on an already-ended session returns the existing summary."
    again = requests.post(
        server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert again.status_code == 200 and again.json() == ended


def test_the_older_end_example_with_a_reason_and_its_recording(server: Server, key: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", OLDER_CREATE))
    r = post_raw(server, key, f"/v1/sessions/{session['id']}/end", OLDER_END)
    assert r.status_code == 200, r.text
    ended = r.json()
    docs_recording = {"enabled": True, "id": "rec_01HABC987654321", "duration": 245.3}
    same_shape(ended["recording"], docs_recording)
    assert ended["end_reason"] == "completed"
    assert ended["duration"] == ended["duration_seconds"]
    assert ended["recording"]["id"].startswith("rec_")
    # "End, then list recordings": they exist already, the mixed one is recording.id.
    listed = requests.get(
        server.url(f"/v1/sessions/{session['id']}/recordings"),
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    ).json()["data"]
    assert sorted(rec["channel"] for rec in listed) == ["agent", "customer", "mixed"]
    mixed = next(rec for rec in listed if rec["channel"] == "mixed")
    assert mixed["id"] == ended["recording"]["id"]


@pytest.mark.parametrize("reason", END_REASONS)
def test_every_documented_end_reason_is_kept(server: Server, key: str, reason: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))
    r = post_raw(server, key, f"/v1/sessions/{session['id']}/end", json.dumps({"reason": reason}))
    assert r.status_code == 200 and r.json()["end_reason"] == reason
    got = requests.get(
        server.url(f"/v1/sessions/{session['id']}"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert got.json()["end_reason"] == reason


def test_end_honours_an_idempotency_key(server: Server, key: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))
    path = f"/v1/sessions/{session['id']}/end"
    first = post_raw(server, key, path, OLDER_END, **{"Idempotency-Key": "end-once"})
    replay = post_raw(server, key, path, OLDER_END, **{"Idempotency-Key": "end-once"})
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = post_raw(server, key, path, '{"reason": "error"}', **{"Idempotency-Key": "end-once"})
    assert_error(other, 400, "idempotency_mismatch", error_type="invalid_request_error")


def _streamed_call(server: Server, key: str, seconds: float) -> dict[str, Any]:
    """A session streamed the newer way (epoch milliseconds), left open: ended over HTTP."""
    session = created(
        post_raw(
            server, key, "/v1/sessions", json.dumps({**ROUTING_SIP, "recording": {"enabled": True}})
        )
    )
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    wave = tone(seconds, 700, 8000)
    start_ms = int(time.time() * 1000)

    async def stream() -> None:
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            for i, offset in enumerate(range(0, len(wave), 1600)):  # 200 ms chunks
                await ws.send(
                    json.dumps(
                        {
                            "type": "audio.input",
                            "sequence": 1729481920 + i,
                            "timestamp_ms": start_ms + offset // 8,
                            "speaker": "customer",
                            "audio": {
                                "encoding": "mulaw",
                                "sample_rate_hz": 8000,
                                "payload": base64.b64encode(
                                    mulaw_encode(wave[offset : offset + 1600])
                                ).decode(),
                            },
                        }
                    )
                )
            await ws.send('{"type": "ping"}')
            while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "pong":
                pass

    asyncio.run(stream())
    return session


def test_end_then_list_recordings_is_never_empty_and_the_call_is_recorded(
    server: Server, key: str
) -> None:
    session = _streamed_call(server, key, 2.0)
    ended = post_raw(server, key, f"/v1/sessions/{session['id']}/end", OLDER_END).json()
    rec_id = ended["recording"]["id"]
    listed = requests.get(
        server.url(f"/v1/sessions/{session['id']}/recordings"),
        headers=auth(key),
        timeout=HTTP_TIMEOUT,
    ).json()["data"]
    assert [r["id"] for r in listed] == [rec_id]  # at once: made by the end itself
    deadline = time.monotonic() + 30
    while (rec := _get(server, key, f"/v1/recordings/{rec_id}"))["status"] == "processing":
        assert time.monotonic() < deadline, rec
        time.sleep(0.1)
    assert rec["status"] == "ready" and rec["duration"] == pytest.approx(2.0, abs=0.01)
    got = _get(server, key, f"/v1/sessions/{session['id']}")
    assert got["recording"] == {
        "enabled": True,
        "channels": "mixed",
        "id": rec_id,
        "duration": rec["duration"],
    }


def _get(server: Server, key: str, path: str) -> dict[str, Any]:
    r = requests.get(server.url(path), headers=auth(key), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_recorded_session_without_audio_fails_with_no_audio_and_says_so(
    server: Server, key: str, receiver: Receiver
) -> None:
    session = created(post_raw(server, key, "/v1/sessions", OLDER_CREATE))  # dual, recording
    url = f"{session['stream']['url']}?token={session['stream']['token']}"

    async def connect_and_end() -> None:  # the stream opens and ends without a chunk of audio
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.ready"
            await ws.send('{"type": "session.end"}')
            assert json.loads(await ws.recv())["type"] == "session.ended"

    asyncio.run(connect_and_end())
    deadline = time.monotonic() + 30
    while True:
        listed = _get(server, key, f"/v1/sessions/{session['id']}/recordings")["data"]
        if listed and all(r["status"] != "processing" for r in listed):
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)
    assert {(r["status"], r["failure_reason"]) for r in listed} == {("failed", "no_audio")}
    assert len(listed) == 3
    ids = {r["id"] for r in listed}
    audio = requests.get(server.audio_url(listed[0]["id"]), headers=auth(key), timeout=30)
    assert_error(audio, 409, "recording_failed")

    def failed_events() -> set[str]:
        events = [json.loads(r.body) for r in receiver.snapshot()]
        return {e["data"]["id"] for e in events if e["type"] == "recording.failed"} & ids

    while failed_events() != ids:
        assert time.monotonic() < deadline + 30, failed_events()
        time.sleep(0.1)
    ended = _get(server, key, f"/v1/sessions/{session['id']}")
    assert ended["end_reason"] == "completed"  # the stream's session.end


# -- errors as Kallglot types them ---------------------------------------------------------------


def test_the_overview_error_example_missing_mode(server: Server, key: str) -> None:
    # The docs' example is {"code": "invalid_request", "type": "validation_error", "param":
    # "mode"}; kallrec uses the error table's code for it (see the compatibility page).
    r = post_raw(server, key, "/v1/sessions", "{}")
    assert_error(r, 400, "missing_required_field", error_type="validation_error", param="mode")


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ('{"mode": "translation"}', "invalid_mode", "mode"),
        ('{"mode": "bidirectional_translation", "source_language": "german"}',
         "invalid_language_code", "source_language"),
        # The newer errors page: a provider string copied from an answer "will not match the API".
        ('{"mode": "bidirectional_translation", "provider": "twilio"}', "invalid_provider",
         "provider"),
        ('{"mode": "bidirectional_translation", "provider": {"type": "skype"}}',
         "invalid_provider", "provider.type"),
        ('{"mode": "bidirectional_translation", "routing": {"direction": "up"}}',
         "invalid_provider", "routing.direction"),
        ('{"mode": "bidirectional_translation", "recording": {"enabled": "yes"}}',
         "invalid_field_value", "recording.enabled"),
    ],
)  # fmt: skip
def test_field_errors_are_validation_errors(
    server: Server, key: str, body: str, code: str, param: str
) -> None:
    r = post_raw(server, key, "/v1/sessions", body)
    assert_error(r, 400, code, error_type="validation_error", param=param)


def test_a_bad_end_reason_is_a_validation_error(server: Server, key: str) -> None:
    session = created(post_raw(server, key, "/v1/sessions", NEWER_CREATE))
    r = post_raw(server, key, f"/v1/sessions/{session['id']}/end", '{"reason": "finished"}')
    assert_error(r, 400, "invalid_field_value", error_type="validation_error", param="reason")


def test_keys_are_authentication_errors(server: Server) -> None:
    key = server.create_key("revoked", mode="live")
    r = requests.get(server.url("/v1/sessions"), headers=auth("sk_live_nope"), timeout=30)
    assert_error(r, 401, "invalid_api_key", error_type="authentication_error")
    server.cli("keys", "revoke", key)
    r = requests.get(server.url("/v1/sessions"), headers=auth(key), timeout=30)
    assert_error(r, 401, "revoked_api_key", error_type="authentication_error")


def test_listing_sessions_needs_sessions_read(server: Server) -> None:
    key = server.create_key("narrow", mode="live", scopes=["recordings:read"])
    r = requests.get(server.url("/v1/sessions"), headers=auth(key), timeout=30)
    assert_error(r, 403, "insufficient_permissions", error_type="permission_error")


def test_no_traceback_and_no_500_for_odd_values(server: Server, key: str) -> None:
    odd = [
        {"mode": "ai_agent", "metadata": {"n": 10**30}},
        {"mode": "ai_agent", "ai_agent": [1, 2]},
        {"mode": "ai_agent", "routing": {"phone_number": 14155551234}},
        {"mode": "ai_agent", "routing": {"sip": {"from_uri": "sip:" + "a" * 2000}}},
        {"mode": "ai_agent", "source_language": ["de"]},
    ]
    for body in odd:
        r = post_raw(server, key, "/v1/sessions", json.dumps(body))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["type"] == "validation_error"
    nan = post_raw(server, key, "/v1/sessions", '{"mode": "ai_agent", "metadata": {"x": NaN}}')
    assert_error(nan, 400, "invalid_request", error_type="invalid_request_error")
