"""Sessions: create, retrieve, end, validation and idempotency."""

from __future__ import annotations

import pytest

BODY = {"mode": "bidirectional_translation", "source_language": "en", "target_language": "de"}


async def test_create_returns_201_with_a_stream_token(client, caller) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, json=BODY)
    assert response.status_code == 201
    session = response.json()
    assert session["id"].startswith("sess_")
    assert session["object"] == "session"
    assert session["status"] == "created"
    assert session["recording"] == {"enabled": True, "channels": "mixed"}
    assert session["stream"]["token"].startswith("kst_test_")  # the mode, as Kallglot's
    assert session["stream"]["url"] == f"ws://kallrec.test/v1/sessions/{session['id']}/connect"
    assert session["created_at"].endswith("Z")
    assert session["started_at"] is None and session["duration"] is None


async def test_retrieve_and_end_is_idempotent(client, caller) -> None:
    created = (await client.post("/v1/sessions", headers=caller.headers, json=BODY)).json()
    got = await client.get(f"/v1/sessions/{created['id']}", headers=caller.headers)
    assert got.json()["id"] == created["id"]
    ended = await client.post(f"/v1/sessions/{created['id']}/end", headers=caller.headers)
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    assert ended.json()["stream"] is None
    again = await client.post(f"/v1/sessions/{created['id']}/end", headers=caller.headers)
    assert again.json() == ended.json()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "mode"),
        ({"mode": "karaoke"}, "mode"),
        ({**BODY, "provider": "skype"}, "provider"),
        ({**BODY, "recording": {"channels": "quad"}}, "recording.channels"),
        ({**BODY, "recording": {"enabled": "yes"}}, "recording.enabled"),
        ({**BODY, "metadata": {"k": 5}}, "metadata[k]"),
        ({**BODY, "metadata": {f"k{i}": "v" for i in range(51)}}, "metadata"),
        ({**BODY, "colour": "red"}, "colour"),
    ],
)
async def test_invalid_bodies_name_the_parameter(client, caller, body, param) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def test_non_json_body_is_400(client, caller) -> None:
    response = await client.post("/v1/sessions", headers=caller.headers, content=b"{nope")
    assert response.status_code == 400


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
