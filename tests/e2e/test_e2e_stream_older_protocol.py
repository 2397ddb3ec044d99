"""The older Kallglot stream protocol against a real server (issue 12, item 5): the stream token
in ``Authorization: Bearer`` at connect, ``{"type": "end"}``, and ``control`` messages (mute and
unmute make silence in the track, the transcription controls are accepted and ignored).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from tests.e2e.helpers import Server, auth
from tests.e2e.streaming import (
    FAST,
    audible,
    new_session,
    next_message,
    ready_recordings,
    samples_of,
    tone_chunk,
)

pytestmark = pytest.mark.e2e

EPOCH_MS = 1_764_000_000_000


def audio(speaker: str, timestamp_ms: int, ms: int = 100) -> str:
    return tone_chunk(speaker, timestamp_ms, sequence=timestamp_ms // 100, ms=ms)


def seconds_of(speaker: str, start_s: float, end_s: float) -> list[str]:
    """100 ms chunks of a speaker's tone from start_s to end_s on the epoch clock."""
    first, last = round(start_s * 10), round(end_s * 10)
    return [audio(speaker, EPOCH_MS + i * 100) for i in range(first, last)]


MUTE = json.dumps({"type": "control", "action": "mute"})
UNMUTE = json.dumps({"type": "control", "action": "unmute"})


async def errors_until_pong(ws: Any) -> list[dict[str, Any]]:
    await ws.send('{"type": "ping"}')
    errors = []
    while (reply := await next_message(ws))["type"] != "pong":
        assert reply["type"] == "session.error", reply
        errors.append(reply)
    return errors


async def header_call(session: dict[str, Any], messages: list[str], end: str) -> list[dict]:
    """Connects the older docs' preferred way (token in the header, none in the URL), sends the
    messages, then ``end``; returns the session.errors received."""
    headers = {"Authorization": f"Bearer {session['stream']['token']}"}
    async with websockets.connect(session["stream"]["url"], additional_headers=headers) as ws:
        assert (await next_message(ws))["type"] == "session.ready"
        for message in messages:
            await ws.send(message)
        errors = await errors_until_pong(ws)
        await ws.send(end)
        ended = await next_message(ws)
        assert ended == {
            "type": "session.ended",
            "session_id": session["id"],
            "reason": "explicit_end",
        }
    return errors


def heard(server: Server, key: str, rec: dict[str, Any]) -> np.ndarray:
    """One flag per 100 ms window of the recording: is there sound in it?"""
    return audible(samples_of(server, key, rec))


def close_code_for(url: str, headers: dict[str, str]) -> tuple[dict[str, Any], int]:
    async def connect() -> tuple[dict[str, Any], int]:
        async with websockets.connect(url, additional_headers=headers) as ws:
            first = await next_message(ws)
            if first["type"] == "session.ready":
                return first, 1000
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return first, ws.close_code or 0

    return asyncio.run(connect())


@pytest.fixture(scope="module")
def live_server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers(FAST)


@pytest.fixture(scope="module")
def key(live_server: Server) -> str:
    return live_server.create_key("callcenter", mode="test")


# -- the token at connect --------------------------------------------------------------------


def test_the_token_in_the_authorization_header_opens_the_stream(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "mixed")
    errors = asyncio.run(header_call(session, seconds_of("agent", 0, 1), '{"type": "end"}'))
    assert errors == []
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer kst_test_forged",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "{token}",  # no scheme
        "Bearer {key}",  # the API key is no stream token
    ],
)
def test_a_wrong_authorization_header_is_an_invalid_token(
    live_server: Server, key: str, header: str
) -> None:
    session = new_session(live_server, key)
    value = header.format(token=session["stream"]["token"], key=key)
    first, code = close_code_for(session["stream"]["url"], {"Authorization": value})
    assert code == 4001 and first == {
        "type": "session.error",
        "code": "invalid_token",
        "message": first["message"],
    }


def test_the_header_is_any_case_of_bearer(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)
    headers = {"Authorization": f"bearer {session['stream']['token']}"}
    assert close_code_for(session["stream"]["url"], headers)[1] == 1000


def test_with_both_the_query_token_is_used_and_an_api_key_header_is_no_obstacle(
    live_server: Server, key: str
) -> None:
    # A client whose HTTP library sends its API key on every request still connects.
    session = new_session(live_server, key)
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    assert close_code_for(url, {"Authorization": f"Bearer {key}"})[1] == 1000
    # And a header cannot rescue a wrong token in the URL.
    bad = f"{session['stream']['url']}?token=kst_test_forged"
    headers = {"Authorization": f"Bearer {session['stream']['token']}"}
    assert close_code_for(bad, headers)[1] == 4001


def test_the_header_follows_the_same_rules_as_the_query(live_server: Server, key: str) -> None:
    mine, other = (
        new_session(live_server, key),
        new_session(live_server, key),
    )
    wrong_session = {"Authorization": f"Bearer {other['stream']['token']}"}
    assert close_code_for(mine["stream"]["url"], wrong_session)[1] == 4003
    ended = new_session(live_server, key)
    done = httpx.post(live_server.url(f"/v1/sessions/{ended['id']}/end"), headers=auth(key))
    assert done.status_code == 200, done.text
    former = {"Authorization": f"Bearer {ended['stream']['token']}"}
    assert close_code_for(ended["stream"]["url"], former)[1] == 4009


# -- end -------------------------------------------------------------------------------------


def test_end_ends_the_session_like_session_end(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)
    asyncio.run(header_call(session, seconds_of("customer", 0, 0.5), '{"type": "end"}'))
    got = httpx.get(live_server.url(f"/v1/sessions/{session['id']}"), headers=auth(key)).json()
    assert got["status"] == "ended" and got["stream"] is None


# -- control ---------------------------------------------------------------------------------


def test_mute_makes_silence_in_the_tracks_and_unmute_resumes(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)
    messages = [
        *seconds_of("agent", 0, 1),
        MUTE,  # both speakers: the older docs' control names none
        *seconds_of("agent", 1, 2),
        *seconds_of("customer", 1, 2),
        UNMUTE,
        *seconds_of("agent", 2, 3),
    ]
    assert asyncio.run(header_call(session, messages, '{"type": "end"}')) == []
    recs = ready_recordings(live_server, key, session["id"], 3)
    for rec in recs.values():  # the muted second kept its place on the timeline
        assert rec["duration"] == pytest.approx(3.0, abs=0.01)
    agent = heard(live_server, key, recs["agent"])
    assert agent[2:10].all() and not agent[12:20].any() and agent[22:30].all()
    assert not heard(live_server, key, recs["customer"]).any()


def test_mute_can_name_one_speaker(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)
    messages = [
        json.dumps({"type": "control", "action": "mute", "speaker": "customer"}),
        *seconds_of("agent", 0, 1),
        *seconds_of("customer", 0, 1),
    ]
    assert asyncio.run(header_call(session, messages, '{"type": "session.end"}')) == []
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert heard(live_server, key, recs["agent"])[2:10].all()
    assert not heard(live_server, key, recs["customer"]).any()
    assert recs["customer"]["duration"] == pytest.approx(1.0, abs=0.01)


def test_a_mute_longer_than_the_jump_limit_does_not_refuse_the_audio_after_it(
    live_server: Server, key: str
) -> None:
    # 65 s muted (one-second chunks: the limit is 60 s past the furthest audio), then 1 s.
    session = new_session(live_server, key, "mixed")
    second = [audio("agent", EPOCH_MS + s * 1000, ms=1000) for s in range(1, 66)]
    messages = [*seconds_of("agent", 0, 1), MUTE, *second, UNMUTE, *seconds_of("agent", 66, 67)]
    assert asyncio.run(header_call(session, messages, '{"type": "end"}')) == []
    mixed = ready_recordings(live_server, key, session["id"], 1)["mixed"]
    assert mixed["duration"] == pytest.approx(67.0, abs=0.01)
    flags = heard(live_server, key, mixed)
    assert flags[2:10].any() and not flags[12:660].any() and flags[662:670].all()


@pytest.mark.parametrize("action", ["pause_transcription", "resume_transcription"])
def test_transcription_controls_are_accepted_and_change_nothing(
    live_server: Server, key: str, action: str
) -> None:
    session = new_session(live_server, key, "mixed")
    control = json.dumps({"type": "control", "action": action})
    messages = [*seconds_of("agent", 0, 0.5), control, *seconds_of("agent", 0.5, 1)]
    assert asyncio.run(header_call(session, messages, '{"type": "end"}')) == []
    mixed = ready_recordings(live_server, key, session["id"], 1)["mixed"]
    assert heard(live_server, key, mixed)[2:10].all()


def test_an_unknown_control_action_is_an_error_and_the_stream_goes_on(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "mixed")
    messages = [
        json.dumps({"type": "control", "action": "hold"}),
        json.dumps({"type": "control"}),
        *seconds_of("agent", 0, 1),
    ]
    errors = asyncio.run(header_call(session, messages, '{"type": "end"}'))
    assert [e["code"] for e in errors] == ["unknown_control_action"] * 2
    assert "hold" in errors[0]["message"] and "mute" in errors[0]["message"]
    mixed = ready_recordings(live_server, key, session["id"], 1)["mixed"]
    assert mixed["duration"] == pytest.approx(1.0, abs=0.01)


def test_a_reconnect_starts_unmuted(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "mixed")
    headers = {"Authorization": f"Bearer {session['stream']['token']}"}

    async def muted_then_dropped() -> None:
        async with websockets.connect(session["stream"]["url"], additional_headers=headers) as ws:
            assert (await next_message(ws))["type"] == "session.ready"
            for message in [*seconds_of("agent", 0, 1), MUTE, *seconds_of("agent", 1, 2)]:
                await ws.send(message)
            assert await errors_until_pong(ws) == []

    asyncio.run(muted_then_dropped())
    assert asyncio.run(header_call(session, seconds_of("agent", 2, 3), '{"type": "end"}')) == []
    mixed = ready_recordings(live_server, key, session["id"], 1)["mixed"]
    flags = heard(live_server, key, mixed)
    assert len(flags) >= 29 and flags[2:10].all() and not flags[12:20].any() and flags[22:29].all()
