"""Sessions: create, retrieve, list, end, validation, idempotency; Kallglot's fields (issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from kallrec.audio.mulaw import mulaw_encode
from kallrec.db import schema
from kallrec.live.tracks import SessionTracks, track_dir
from tests.conftest import drain_jobs

BODY = {"mode": "bidirectional_translation", "source_language": "en", "target_language": "de"}
RECORDED = {**BODY, "recording": {"enabled": True}}
DEEP: list = [1]
for _ in range(16):
    DEEP = [DEEP]


async def create(client, caller, body=None, headers=None):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/sessions", headers={**caller.headers, **(headers or {})}, json=body or BODY
    )
    assert response.status_code == 201, response.text
    return response.json()


def assert_validation(response, code: str, param: str | None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("validation_error", code, param)


def events(runtime, event_type: str) -> list[dict]:  # type: ignore[no-untyped-def]
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(schema.events.c.payload).where(schema.events.c.type == event_type)
        )
        return [json.loads(payload) for (payload,) in rows]


def speak(runtime, session_id: str, seconds: float = 1.0) -> None:  # type: ignore[no-untyped-def]
    """Live audio on the session's agent track, as the stream writes it."""
    tracks = SessionTracks(track_dir(runtime.settings.data_dir, session_id))
    tracks.write("agent", 0, mulaw_encode(np.full(int(8000 * seconds), 3000, dtype=np.int16)))
    tracks.close()


async def test_create_returns_201_with_a_stream_token(client, caller) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, json=BODY)
    assert response.status_code == 201
    session = response.json()
    assert session["id"].startswith("sess_")
    assert session["object"] == "session"
    assert session["status"] == "created"
    # Kallglot's default: a session records only when asked (or its organization says so).
    assert session["recording"] == {
        "enabled": False,
        "channels": "mixed",
        "id": None,
        "duration": None,
    }
    assert session["provider"] is None and session["phone_number"] is None
    assert session["routing"] is None and session["ai_agent"] is None
    assert session["end_reason"] is None and session["duration_seconds"] is None
    assert session["stream"]["token"].startswith("kst_test_")  # the mode, as Kallglot's
    assert session["stream"]["url"] == f"ws://kallrec.test/v1/sessions/{session['id']}/connect"
    assert session["created_at"].endswith("Z")
    assert session["started_at"] is None and session["duration"] is None


async def test_a_host_header_that_is_no_host_never_reaches_the_stream_url(client, caller) -> None:
    headers = {**caller.headers, "Host": "evil.example/x?y"}
    response = await client.post("/v1/sessions", headers=headers, json=BODY)
    assert response.status_code == 201
    url = response.json()["stream"]["url"]
    # Falls back to the address kallrec listens on (KALLREC_HOST/PORT), never the header.
    assert url.startswith("ws://127.0.0.1:") and "evil" not in url, url


async def test_retrieve_and_end_is_idempotent(client, caller) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    got = await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)
    assert got.json()["id"] == created["id"]
    ended = await client.post(f"/v1/sessions/{created['id']}/end", headers=caller.headers)
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    assert ended.json()["stream"] is None
    assert ended.json()["end_reason"] == "completed"
    again = await client.post(f"/v1/sessions/{created['id']}/end", headers=caller.headers)
    assert again.json() == ended.json()


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "missing_required_field", "mode"),
        ({"mode": None}, "missing_required_field", "mode"),
        ({"mode": "karaoke"}, "invalid_mode", "mode"),
        ({"mode": 5}, "invalid_mode", "mode"),
        ({**BODY, "provider": "skype"}, "invalid_provider", "provider"),
        ({**BODY, "provider": "twilio"}, "invalid_provider", "provider"),  # response-only
        ({**BODY, "recording": {"channels": "quad"}}, "invalid_field_value", "recording.channels"),
        ({**BODY, "recording": {"enabled": "yes"}}, "invalid_field_value", "recording.enabled"),
        ({**BODY, "recording": True}, "invalid_field_value", "recording"),
        ({**BODY, "recording": {"format": "wav"}}, "invalid_request", "recording.format"),
        ({**BODY, "metadata": {"k": None}}, "invalid_field_value", "metadata[k]"),
        ({**BODY, "metadata": {"k": [1]}}, "invalid_field_value", "metadata[k]"),
        ({**BODY, "metadata": {"k": {"a": 1}}}, "invalid_field_value", "metadata[k]"),
        ({**BODY, "metadata": {"k": 2**53}}, "invalid_field_value", "metadata[k]"),
        ({**BODY, "metadata": {"k": "x" * 501}}, "invalid_field_value", "metadata[k]"),
        (
            {**BODY, "metadata": {f"k{i}": "v" for i in range(51)}},
            "invalid_field_value",
            "metadata",
        ),
        ({**BODY, "metadata": ["a"]}, "invalid_field_value", "metadata"),
        ({**BODY, "colour": "red"}, "invalid_request", "colour"),
        ({**BODY, "source_language": "english"}, "invalid_language_code", "source_language"),
        ({**BODY, "target_language": "de_DE"}, "invalid_language_code", "target_language"),
        ({**BODY, "target_language": ""}, "invalid_language_code", "target_language"),
        ({**BODY, "source_language": "xx"}, "invalid_language_code", "source_language"),
        ({**BODY, "source_language": 7}, "invalid_language_code", "source_language"),
        ({**BODY, "ai_agent": "alloy"}, "invalid_field_value", "ai_agent"),
        ({**BODY, "ai_agent": {"p": "x" * 40_000}}, "invalid_field_value", "ai_agent"),
        ({**BODY, "ai_agent": {"a": DEEP}}, "invalid_field_value", "ai_agent"),
        ({**BODY, "routing": "sip"}, "invalid_provider", "routing"),
        ({**BODY, "routing": {"type": "skype"}}, "invalid_provider", "routing.type"),
        (
            {**BODY, "routing": {"phone_number": "4155551234"}},
            "invalid_provider",
            "routing.phone_number",
        ),
        (
            {**BODY, "routing": {"phone_number": "+1 415 555 1234"}},
            "invalid_provider",
            "routing.phone_number",
        ),
        ({**BODY, "routing": {"direction": "sideways"}}, "invalid_provider", "routing.direction"),
        ({**BODY, "routing": {"connection_id": ""}}, "invalid_provider", "routing.connection_id"),
        ({**BODY, "routing": {"sip": "alice"}}, "invalid_provider", "routing.sip"),
        (
            {**BODY, "routing": {"type": "sip", "sip": {"from_uri": "alice@example.com"}}},
            "invalid_provider",
            "routing.sip.from_uri",
        ),
        ({**BODY, "routing": {"call_sid": 42}}, "invalid_provider", "routing.call_sid"),
        ({**BODY, "provider": {"type": "skype"}}, "invalid_provider", "provider.type"),
        (
            {**BODY, "provider": {"type": "twilio"}, "routing": {"type": "twilio"}},
            "invalid_provider",
            "provider",
        ),
    ],
)
async def test_invalid_bodies_are_validation_errors_naming_the_field(
    client, caller, body, code, param
) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, json=body)
    assert_validation(response, code, param)


@pytest.mark.parametrize(
    "raw",
    [b"{nope", b"[1]", b'{"mode": "ai_agent", "metadata": {"k": NaN}}', b'{"mode": Infinity}'],
)
async def test_a_body_that_is_not_a_json_object_is_an_invalid_request(client, caller, raw) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, content=raw)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_request")


async def test_unknown_session_is_404(client, caller) -> None:
    response = await client.get("/v1/sessions/sess_01HXYZ", headers=caller.headers)
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "session_id"


async def test_other_org_cannot_see_the_session(client, caller, make_caller) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    other = make_caller("globex")
    response = await client.get(f"/v1/sessions/{created['id']}", headers=other.headers)
    assert response.status_code == 404


async def test_read_only_key_cannot_create(client, make_caller) -> None:
    reader = make_caller(scopes=("sessions:read",))
    response = await client.post("/v1/sessions", headers=reader.headers, json=BODY)
    assert response.status_code == 403


async def test_idempotency_key_replays_the_first_response(client, caller) -> None:
    headers = {**caller.headers, "Idempotency-Key": "abc-1"}
    first = await client.post("/v1/sessions", headers=headers, json=BODY)
    second = await client.post("/v1/sessions", headers=headers, json=BODY)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"


async def test_idempotency_key_with_another_body_is_a_mismatch(client, caller) -> None:
    headers = {**caller.headers, "Idempotency-Key": "abc-2"}
    await client.post("/v1/sessions", headers=headers, json=BODY)
    response = await client.post(
        "/v1/sessions", headers=headers, json={**BODY, "source_language": "fr"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_mismatch"


async def test_idempotency_keys_are_per_organization(client, caller, make_caller) -> None:
    other = make_caller("globex")
    first = await client.post(
        "/v1/sessions", headers={**caller.headers, "Idempotency-Key": "same"}, json=BODY
    )
    second = await client.post(
        "/v1/sessions", headers={**other.headers, "Idempotency-Key": "same"}, json=BODY
    )
    assert first.json()["id"] != second.json()["id"]


async def test_failed_request_does_not_burn_the_idempotency_key(client, caller) -> None:
    headers = {**caller.headers, "Idempotency-Key": "retry-me"}
    bad = await client.post("/v1/sessions", headers=headers, json={"mode": "nope"})
    assert bad.status_code == 400
    good = await client.post("/v1/sessions", headers=headers, json=BODY)
    assert good.status_code == 201


async def test_idempotency_key_in_flight_is_409(client, runtime, caller) -> None:
    import hashlib
    import json

    from kallrec import timeutil
    from kallrec.api.idempotency import request_fingerprint

    raw = json.dumps(BODY).encode()
    fingerprint = request_fingerprint("POST", "/v1/sessions", hashlib.sha256(raw).hexdigest())
    runtime.repo.begin_idempotent(caller.org_id, False, "busy", fingerprint, timeutil.now(), 86400)
    response = await client.post(
        "/v1/sessions",
        headers={**caller.headers, "Idempotency-Key": "busy", "Content-Type": "application/json"},
        content=raw,
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert response.headers["retry-after"] == "1"


async def test_an_oversized_json_body_is_413_before_it_is_read_whole(client, caller) -> None:
    big = b'{"mode": "ai_agent", "metadata": {"a": "' + b"x" * 2_000_000 + b'"}}'
    response = await client.post(
        "/v1/sessions",
        headers={**caller.headers, "Content-Type": "application/json"},
        content=big,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_a_read_only_key_sees_no_stream_token(client, caller, make_caller) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    reader = make_caller(scopes=("sessions:read",))
    got = await client.get(f"/v1/sessions/{created['id']}", headers=reader.headers)
    assert got.status_code == 200
    assert got.json()["status"] == "created" and got.json()["stream"] is None
    writer = await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)
    assert writer.json()["stream"]["token"] == created["stream"]["token"]


async def test_a_read_only_key_cannot_end_the_session(client, caller, make_caller) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    reader = make_caller(scopes=("sessions:read",))
    ended = await client.post(f"/v1/sessions/{created['id']}/end", headers=reader.headers)
    assert ended.status_code == 403
    assert ended.json()["error"]["type"] == "permission_error"
    got = await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)
    assert got.json()["status"] == "created"


async def test_a_read_only_key_does_not_refresh_an_expired_token(
    client, caller, make_caller, runtime
) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    runtime.repo.replace_stream_token(created["id"], created["stream"]["token"], 0.0)  # expired
    reader = make_caller(scopes=("sessions:read",))
    await client.get(f"/v1/sessions/{created['id']}", headers=reader.headers)
    assert runtime.repo.get_session_any(created["id"]).stream_token_expires_at == 0.0
    fresh = (await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)).json()
    assert fresh["stream"]["token"] != created["stream"]["token"]
    assert fresh["stream"]["token"].startswith("kst_test_")


async def test_a_token_of_the_earlier_shape_is_replaced_for_a_write_key(client, caller, runtime):
    # Minted before tokens went to write keys only (a read key may have seen it): replaced on
    # the next GET by a writer even though it has not expired.
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    old = "kst_" + "A" * 32
    runtime.repo.replace_stream_token(created["id"], old, 4e9)
    fresh = (await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)).json()
    assert fresh["stream"]["token"].startswith("kst_test_")


# -- create: Kallglot's fields ---------------------------------------------------------------


async def test_an_organization_that_records_by_default_records_unless_told_not_to(
    client, runtime, caller
) -> None:
    runtime.repo.set_record_by_default(caller.org_id, True)
    assert (await create(client, caller))["recording"]["enabled"] is True
    off = await create(client, caller, {**BODY, "recording": {"enabled": False}})
    assert off["recording"]["enabled"] is False
    runtime.repo.set_record_by_default(caller.org_id, False)
    assert (await create(client, caller))["recording"]["enabled"] is False
    assert (await create(client, caller, RECORDED))["recording"]["enabled"] is True


async def test_null_recording_fields_take_their_defaults(client, caller) -> None:
    body = {**BODY, "recording": {"enabled": None, "channels": None}}
    assert (await create(client, caller, body))["recording"]["channels"] == "mixed"


@pytest.mark.parametrize(
    ("routing", "provider", "phone_number"),
    [
        ({"phone_number": "+19788006140"}, None, "+19788006140"),
        ({"connection_id": "pcon_01HXYZ", "direction": "inbound"}, None, None),
        ({"type": "sip", "sip": {"from_uri": "sip:alice@example.com"}}, "sip", None),
        ({"type": "twilio", "phone_number": "+14155551234"}, "twilio", "+14155551234"),
        ({"type": "signalwire"}, "signalwire", None),
        ({"type": "vonage", "direction": "outbound"}, "vonage", None),
        ({"type": "plivo"}, "plivo", None),
        ({"type": "telnyx", "call_control_id": "v3:abc"}, "telnyx", None),
        ({}, None, None),
    ],
)
async def test_routing_is_stored_and_answered_with_provider_and_phone_number(
    client, runtime, caller, routing, provider, phone_number
) -> None:
    session = await create(client, caller, {**BODY, "routing": routing})
    assert (session["provider"], session["phone_number"]) == (provider, phone_number)
    assert session["routing"] == routing
    got = (await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)).json()
    assert (got["provider"], got["phone_number"], got["routing"]) == (
        provider,
        phone_number,
        routing,
    )
    row = runtime.repo.get_session_any(session["id"])
    assert row.direction == routing.get("direction")


async def test_unknown_routing_keys_are_kept_and_not_acted_on(client, runtime, caller) -> None:
    routing = {
        "type": "sip",
        "sip": {"from_uri": "sips:alice@example.com", "headers": {"X-Ticket": "T-1"}},
        "audio": {"encoding": "mulaw", "sample_rate": 8000, "channels": 1},
        "voice": "alloy",
    }
    session = await create(client, caller, {**BODY, "routing": routing})
    assert session["routing"] == routing and session["provider"] == "sip"


async def test_the_older_provider_object_is_routing_under_another_name(
    client, runtime, caller
) -> None:
    body = {**BODY, "provider": {"type": "twilio", "call_sid": "CA1234567890abcdef"}}
    session = await create(client, caller, body)
    assert session["provider"] == "twilio" and session["phone_number"] is None
    assert session["routing"] == body["provider"]
    row = runtime.repo.get_session_any(session["id"])
    assert row.carrier_ids_dict == {"call_sid": "CA1234567890abcdef"}
    sip = {"type": "sip", "transport": "tls", "codecs": ["PCMU", "PCMA", "opus"]}
    assert (await create(client, caller, {**BODY, "provider": sip}))["provider"] == "sip"


async def test_carrier_ids_are_merged_as_a_carrier_reports_them(client, runtime, caller) -> None:
    body = {**BODY, "routing": {"type": "telnyx", "call_control_id": "v3:abc"}}
    session = await create(client, caller, body)
    runtime.repo.add_carrier_ids(session["id"], {"stream_id": "st_1"})
    row = runtime.repo.get_session_any(session["id"])
    assert row.carrier_ids_dict == {"call_control_id": "v3:abc", "stream_id": "st_1"}


@pytest.mark.parametrize(
    "code", ["de", "en", "en-US", "pt-BR", "zh-Hant", "zh-Hant-TW", "es-419", "yue", "en-us"]
)
async def test_language_codes_are_stored_and_echoed_as_sent(client, caller, code) -> None:
    body = {"mode": "bidirectional_translation", "source_language": code, "target_language": code}
    session = await create(client, caller, body)
    assert session["source_language"] == session["target_language"] == code


async def test_null_languages_are_omitted_ones(client, caller) -> None:
    body = {"mode": "ai_agent", "source_language": None, "target_language": None}
    session = await create(client, caller, body)
    assert session["source_language"] is None and session["target_language"] is None


async def test_ai_agent_is_stored_and_echoed_not_acted_on(client, caller) -> None:
    agent = {
        "system_prompt": "You are a helpful customer service agent for Acme Corp...",
        "voice": "alloy",
        "temperature": 0.7,
        "knowledge_base_id": "kb_01ABC123",
        "tools": [{"name": "lookup_order", "parameters": {"type": "object", "properties": {}}}],
    }
    session = await create(client, caller, {"mode": "ai_agent", "ai_agent": agent})
    assert session["ai_agent"] == agent
    got = await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)
    assert got.json()["ai_agent"] == agent


async def test_metadata_keeps_strings_numbers_and_booleans_with_their_types(client, caller) -> None:
    metadata = {"customer_id": "cust_123", "attempt": 3, "score": 0.25, "vip": True, "neg": -1}
    session = await create(client, caller, {**BODY, "metadata": metadata})
    assert session["metadata"] == metadata
    got = (await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)).json()
    assert got["metadata"] == metadata
    assert type(got["metadata"]["attempt"]) is int and got["metadata"]["vip"] is True


async def test_session_events_carry_the_new_fields(client, runtime, caller) -> None:
    body = {**RECORDED, "routing": {"type": "twilio", "phone_number": "+14155551234"}}
    session = await create(client, caller, body)
    await client.post(
        f"/v1/sessions/{session['id']}/end", headers=caller.headers, json={"reason": "error"}
    )
    (created,) = events(runtime, "session.created")
    (ended,) = events(runtime, "session.ended")
    assert created["data"]["provider"] == "twilio"
    assert created["data"]["phone_number"] == "+14155551234"
    assert created["data"]["stream"] is None
    assert ended["data"]["end_reason"] == "error"
    assert ended["data"]["recording"]["id"].startswith("rec_")
    assert ended["data"]["duration"] == ended["data"]["duration_seconds"] is not None


# -- end ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason", ["completed", "customer_hangup", "agent_hangup", "error", "timeout"]
)
async def test_the_end_reason_is_kept_and_returned(client, caller, reason) -> None:
    session = await create(client, caller)
    ended = await client.post(
        f"/v1/sessions/{session['id']}/end", headers=caller.headers, json={"reason": reason}
    )
    assert ended.status_code == 200 and ended.json()["end_reason"] == reason
    got = await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)
    assert got.json()["end_reason"] == reason


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"reason": "bored"}, "invalid_field_value", "reason"),
        ({"reason": 1}, "invalid_field_value", "reason"),
        ({"why": "completed"}, "invalid_request", "why"),
    ],
)
async def test_a_bad_end_body_is_a_validation_error_and_ends_nothing(
    client, caller, body, code, param
) -> None:
    session = await create(client, caller)
    response = await client.post(
        f"/v1/sessions/{session['id']}/end", headers=caller.headers, json=body
    )
    assert_validation(response, code, param)
    got = await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)
    assert got.json()["status"] == "created"


async def test_ending_without_a_body_or_content_type_is_completed(client, caller) -> None:
    session = await create(client, caller)
    ended = await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)
    assert ended.json()["end_reason"] == "completed"
    assert ended.json()["duration_seconds"] == ended.json()["duration"] >= 0


async def test_ending_again_keeps_the_first_reason(client, caller) -> None:
    session = await create(client, caller)
    url = f"/v1/sessions/{session['id']}/end"
    first = await client.post(url, headers=caller.headers, json={"reason": "agent_hangup"})
    again = await client.post(url, headers=caller.headers, json={"reason": "error"})
    assert again.json() == first.json() and again.json()["end_reason"] == "agent_hangup"


async def test_the_recordings_exist_when_the_end_answers(client, runtime, caller) -> None:
    session = await create(
        client, caller, {**BODY, "recording": {"enabled": True, "channels": "dual"}}
    )
    ended = (await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)).json()
    # No job has run yet: the recordings were made in the transaction that ended the session.
    listed = await client.get(f"/v1/sessions/{session['id']}/recordings", headers=caller.headers)
    recordings = {r["channel"]: r for r in listed.json()["data"]}
    assert sorted(recordings) == ["agent", "customer", "mixed"]
    assert {r["status"] for r in recordings.values()} == {"processing"}
    assert ended["recording"] == {
        "enabled": True,
        "channels": "dual",
        "id": recordings["mixed"]["id"],
        "duration": None,
    }
    assert recordings["mixed"]["failure_reason"] is None


async def test_live_audio_fills_the_recordings_made_at_the_end(client, runtime, caller) -> None:
    session = await create(client, caller, RECORDED)
    speak(runtime, session["id"], seconds=2.0)
    ended = (await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)).json()
    await drain_jobs(runtime)
    rec = await client.get(f"/v1/recordings/{ended['recording']['id']}", headers=caller.headers)
    assert rec.json()["status"] == "ready"
    assert rec.json()["duration"] == pytest.approx(2.0, abs=0.1)
    listed = await client.get(f"/v1/sessions/{session['id']}/recordings", headers=caller.headers)
    assert [r["id"] for r in listed.json()["data"]] == [ended["recording"]["id"]]
    got = (await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)).json()
    assert got["recording"]["id"] == ended["recording"]["id"]
    assert got["recording"]["duration"] == rec.json()["duration"]
    assert not list((runtime.settings.data_dir / "audio" / "staging").glob("*"))


@pytest.mark.parametrize("channels", ["mixed", "dual"])
async def test_a_recorded_session_without_audio_ends_with_failed_recordings(
    client, runtime, caller, channels
) -> None:
    body = {**BODY, "recording": {"enabled": True, "channels": channels}}
    session = await create(client, caller, body)
    await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)
    await drain_jobs(runtime)
    listed = await client.get(f"/v1/sessions/{session['id']}/recordings", headers=caller.headers)
    recordings = listed.json()["data"]
    expected = 3 if channels == "dual" else 1
    assert len(recordings) == expected
    assert {(r["status"], r["failure_reason"]) for r in recordings} == {("failed", "no_audio")}
    failed = events(runtime, "recording.failed")
    assert len(failed) == expected
    assert {e["data"]["failure_reason"] for e in failed} == {"no_audio"}
    audio = await client.get(f"/v1/recordings/{recordings[0]['id']}/audio", headers=caller.headers)
    assert audio.status_code == 409 and audio.json()["error"]["code"] == "recording_failed"


async def test_a_recording_deleted_before_the_audio_came_stays_deleted(
    client, runtime, caller
) -> None:
    session = await create(client, caller, RECORDED)
    speak(runtime, session["id"])
    ended = (await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)).json()
    rec_id = ended["recording"]["id"]
    assert (await client.delete(f"/v1/recordings/{rec_id}", headers=caller.headers)).is_success
    await drain_jobs(runtime)
    assert (await client.get(f"/v1/recordings/{rec_id}", headers=caller.headers)).status_code == 404
    await drain_jobs(runtime)
    from kallrec.lifecycle import reap_files

    await reap_files(runtime)
    assert not list((runtime.settings.data_dir / "audio").rglob("*.pcm"))
    assert not list((runtime.settings.data_dir / "audio").rglob("*.mp3"))


async def test_a_session_that_does_not_record_ends_with_no_recordings(client, runtime, caller):
    session = await create(client, caller)
    speak(runtime, session["id"])
    ended = (await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)).json()
    await drain_jobs(runtime)
    assert ended["recording"]["id"] is None
    listed = await client.get(f"/v1/sessions/{session['id']}/recordings", headers=caller.headers)
    assert listed.json()["data"] == []
    assert events(runtime, "recording.failed") == []


async def test_idle_sessions_end_with_reason_timeout(client, runtime, caller) -> None:
    from dataclasses import replace

    from kallrec.lifecycle import end_idle_sessions

    session = await create(client, caller)
    runtime.settings = replace(runtime.settings, session_idle_seconds=-1)
    assert await end_idle_sessions(runtime) == 1
    got = (await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)).json()
    assert (got["status"], got["end_reason"]) == ("ended", "timeout")


async def test_end_honours_idempotency_keys(client, caller) -> None:
    session = await create(client, caller)
    url = f"/v1/sessions/{session['id']}/end"
    headers = {**caller.headers, "Idempotency-Key": "end-1"}
    first = await client.post(url, headers=headers, json={"reason": "customer_hangup"})
    replay = await client.post(url, headers=headers, json={"reason": "customer_hangup"})
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    other = await client.post(url, headers=headers, json={"reason": "error"})
    assert other.status_code == 400 and other.json()["error"]["code"] == "idempotency_mismatch"
    # A key first used to create a session is not reused to end one.
    reused = await client.post(
        "/v1/sessions", headers={**caller.headers, "Idempotency-Key": "end-2"}, json=BODY
    )
    crossed = await client.post(url, headers={**caller.headers, "Idempotency-Key": "end-2"})
    assert reused.status_code == 201
    assert crossed.status_code == 400 and crossed.json()["error"]["code"] == "idempotency_mismatch"


async def test_ending_an_unknown_session_is_404(client, caller) -> None:
    response = await client.post("/v1/sessions/sess_01HXYZ/end", headers=caller.headers)
    assert response.status_code == 404 and response.json()["error"]["param"] == "session_id"


# -- list --------------------------------------------------------------------------------------


async def test_list_is_newest_first_with_cursors(client, caller) -> None:
    made = [(await create(client, caller))["id"] for _ in range(5)]
    page = (await client.get("/v1/sessions?limit=2", headers=caller.headers)).json()
    assert page["object"] == "list" and page["url"] == "/v1/sessions"
    assert [s["id"] for s in page["data"]] == made[::-1][:2] and page["has_more"]
    after = await client.get(
        f"/v1/sessions?limit=2&starting_after={page['data'][-1]['id']}", headers=caller.headers
    )
    assert [s["id"] for s in after.json()["data"]] == made[::-1][2:4]
    before = await client.get(
        f"/v1/sessions?limit=2&ending_before={made[1]}", headers=caller.headers
    )
    assert [s["id"] for s in before.json()["data"]] == [made[3], made[2]]


async def test_list_filters_by_status_and_creation_time(client, runtime, caller) -> None:
    old = await create(client, caller)
    with runtime.db.write() as conn:
        conn.execute(
            schema.sessions.update()
            .where(schema.sessions.c.id == old["id"])
            .values(created_at=1_700_000_000.0)
        )
    ended = await create(client, caller)
    await client.post(f"/v1/sessions/{ended['id']}/end", headers=caller.headers)
    fresh = await create(client, caller)

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/sessions?{query}", headers=caller.headers)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["data"]]

    assert await ids("status=ended") == [ended["id"]]
    assert await ids("status=created") == [fresh["id"], old["id"]]
    assert await ids("created[lt]=2023-11-15") == [old["id"]]
    assert await ids("created[gte]=1700000001") == [fresh["id"], ended["id"]]
    assert await ids("created[gte]=2023-11-14T22:13:20Z&created[lt]=1700000000.5") == [old["id"]]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("status=open", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("created[gte]=yesterday", "created[gte]"),
        ("starting_after=sess_01HXYZ", "starting_after"),
        ("starting_after=a&ending_before=b", "ending_before"),
    ],
)
async def test_bad_list_parameters_are_invalid_requests(client, caller, query, param) -> None:
    response = await client.get(f"/v1/sessions?{query}", headers=caller.headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


async def test_list_shows_the_stream_only_to_keys_that_may_write(
    client, caller, make_caller
) -> None:
    session = await create(client, caller)
    mine = (await client.get("/v1/sessions", headers=caller.headers)).json()["data"]
    assert mine[0]["stream"]["token"] == session["stream"]["token"]
    reader = make_caller(scopes=("sessions:read",))
    seen = (await client.get("/v1/sessions", headers=reader.headers)).json()["data"]
    assert [s["id"] for s in seen] == [session["id"]] and seen[0]["stream"] is None


async def test_list_needs_sessions_read_and_shows_only_the_keys_org_and_mode(
    client, caller, make_caller
) -> None:
    await create(client, caller)
    other_org = make_caller("globex")
    live = make_caller(live=True)
    assert (await client.get("/v1/sessions", headers=other_org.headers)).json()["data"] == []
    assert (await client.get("/v1/sessions", headers=live.headers)).json()["data"] == []
    recorder = make_caller(scopes=("recordings:read",))
    denied = await client.get("/v1/sessions", headers=recorder.headers)
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"


async def test_a_session_in_the_list_is_the_session_retrieved(client, runtime, caller) -> None:
    session = await create(client, caller, {**RECORDED, "metadata": {"n": 1}})
    speak(runtime, session["id"])
    await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)
    await drain_jobs(runtime)
    listed = (await client.get("/v1/sessions", headers=caller.headers)).json()["data"][0]
    got = (await client.get(f"/v1/sessions/{session['id']}", headers=caller.headers)).json()
    assert listed == got and got["recording"]["duration"] == pytest.approx(1.0, abs=0.1)


# -- q: the console's search (issue 16) ---------------------------------------------------------


async def search(client, caller, q: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = await client.get("/v1/sessions", params={"q": q}, headers=caller.headers)
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["data"]]


async def test_q_finds_sessions_by_metadata_carrier_id_number_or_id(client, caller) -> None:
    routed = await create(
        client,
        caller,
        {
            "mode": "assistive_translation",
            "routing": {"type": "twilio", "phone_number": "+14155550123", "call_sid": "CAfeed42"},
            "metadata": {"order": "Ordre-Zoë-7", "rate": "100%_sure"},
        },
    )
    other = await create(client, caller, {"mode": "assistive_translation", "metadata": {"x": "y"}})
    assert await search(client, caller, "ordre-zoë") == [routed["id"]]  # any case, not ASCII
    assert await search(client, caller, "CAFEED") == [routed["id"]]
    assert await search(client, caller, "5550123") == [routed["id"]]
    assert await search(client, caller, other["id"]) == [other["id"]]
    assert await search(client, caller, "100%_") == [routed["id"]]
    # LIKE's wildcards are characters here, not "anything": only the session that has them.
    assert await search(client, caller, "%") == [routed["id"]]
    assert await search(client, caller, "_") == [routed["id"]]
    assert set(await search(client, caller, "")) == {routed["id"], other["id"]}


async def test_q_is_scoped_to_the_key_and_bounded(client, caller, make_caller) -> None:
    await create(client, caller, {"mode": "assistive_translation", "metadata": {"k": "secret"}})
    assert await search(client, make_caller("globex"), "secret") == []
    response = await client.get("/v1/sessions", params={"q": "x" * 101}, headers=caller.headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "q"
