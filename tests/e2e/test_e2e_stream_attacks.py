"""The session stream attacked, against a real server over real WebSockets (issue 11: items 4,
8 and 11), and the client clocks it must take (spec §6: 0, 30,000 or epoch milliseconds)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
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
    stream_url,
)
from tests.e2e.streaming import tone_chunk as audio

pytestmark = pytest.mark.e2e

EPOCH_MS = 1_764_000_000_000


def connect_url(server: Server, session_id: str, token: str) -> str:
    return f"ws://127.0.0.1:{server.port}/v1/sessions/{session_id}/connect?token={token}"


async def send_all(url: str, messages: list[str]) -> list[dict[str, Any]]:
    """Sends every message, then a ping, then session.end; returns the session.errors received,
    after checking that the connection stayed open to the end."""
    errors = []
    async with websockets.connect(url) as ws:
        assert (await next_message(ws))["type"] == "session.ready"
        for message in messages:
            await ws.send(message)
        await ws.send('{"type":"ping"}')
        while (reply := await next_message(ws))["type"] != "pong":
            assert reply["type"] == "session.error", reply
            errors.append(reply)
        await ws.send('{"type":"session.end"}')
        assert (await next_message(ws))["type"] == "session.ended"
    return errors


@pytest.fixture(scope="module")
def live_server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers(FAST)


@pytest.fixture(scope="module")
def key(live_server: Server) -> str:
    return live_server.create_key("callcenter", mode="test")


# -- item 4: a tiny message must not make a huge recording -----------------------------------


def test_the_reported_attack_makes_short_recordings(live_server: Server, key: str) -> None:
    # Verbatim: one chunk per speaker at 7,200,000 ms, then session.end. The session's
    # timeline starts at its first chunk, so there are no two hours of silence in front.
    session = new_session(live_server, key)
    errors = asyncio.run(
        send_all(stream_url(session), [audio("agent", 7_200_000), audio("customer", 7_200_000)])
    )
    assert errors == []
    recs = ready_recordings(live_server, key, session["id"], 3)
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(0.1, abs=0.01)
        assert rec["size"] < 10_000


def test_a_two_hour_jump_is_refused_not_written_and_the_stream_goes_on(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key)
    messages = [audio("agent", 0), audio("customer", 0)]
    messages += [audio("agent", 7_200_000, 2), audio("customer", 7_200_000, 2)]
    messages += [audio("agent", 100, 3)]  # still welcome after the refusals
    errors = asyncio.run(send_all(stream_url(session), messages))
    assert [e["code"] for e in errors] == ["timestamp_out_of_range"] * 2
    assert "after the furthest audio" in errors[0]["message"]
    recs = ready_recordings(live_server, key, session["id"], 3)
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(0.2, abs=0.01)
        assert rec["size"] < 10_000


def test_a_thirty_second_jump_is_accepted(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, channels="mixed")
    messages = [audio("agent", i * 100, i) for i in range(10)]  # 1 s, then 30 s of nothing
    messages += [audio("agent", 31_000, 11)]
    assert asyncio.run(send_all(stream_url(session), messages)) == []
    rec = ready_recordings(live_server, key, session["id"], 1)["mixed"]
    assert rec["duration"] == pytest.approx(31.1, abs=0.01)
    sound = audible(samples_of(live_server, key, rec))
    assert sound[1:10].all() and not sound[12:310].any() and sound[310:313].any()


@pytest.mark.parametrize("origin", [0, 30_000, EPOCH_MS], ids=["zero", "30s", "epoch_ms"])
def test_any_client_clock_gives_a_recording_as_long_as_the_audio(
    live_server: Server, key: str, origin: int
) -> None:
    session = new_session(live_server, key)
    messages = []
    for i in range(20):  # 2 s of both speakers, as Kallglot's example stamps them
        messages += [audio("agent", origin + i * 100, i), audio("customer", origin + i * 100, i)]
    assert asyncio.run(send_all(stream_url(session), messages)) == []
    recs = ready_recordings(live_server, key, session["id"], 3)
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(2.0, abs=0.01)
    sound = audible(samples_of(live_server, key, recs["agent"]))
    assert sound[1:20].all()  # no leading silence


def test_out_of_order_before_the_start_moves_it_back_by_up_to_ten_seconds(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key)
    messages = [audio("agent", EPOCH_MS + 5_000, 1), audio("customer", EPOCH_MS, 2)]
    messages += [audio("agent", EPOCH_MS - 10_001, 3)]  # further back than 10 s: refused
    errors = asyncio.run(send_all(stream_url(session), messages))
    assert [e["code"] for e in errors] == ["timestamp_out_of_range"]
    assert "before the start" in errors[0]["message"]
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert recs["mixed"]["duration"] == pytest.approx(5.1, abs=0.01)
    customer = audible(samples_of(live_server, key, recs["customer"]))
    assert customer[:3].any() and not customer[3:].any()  # the early chunk opens it


def test_the_origin_survives_a_crash_and_a_reconnect(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server({**FAST, "KALLREC_LIVE_FLUSH_SECONDS": "0.2"})
    key = server.create_key("acme", mode="test")
    session = new_session(server, key)

    async def before_the_crash() -> None:
        ws = await websockets.connect(stream_url(session))
        assert (await next_message(ws))["type"] == "session.ready"
        for i in range(10):
            await ws.send(audio("agent", EPOCH_MS + i * 100, i))
        await ws.send('{"type":"ping"}')
        assert (await next_message(ws))["type"] == "pong"
        # A killed server loses what it had not flushed yet (issue 17: at most one flush
        # interval): this test is about the timeline, so the audio is flushed first.
        await asyncio.sleep(1.0)
        server.kill9()
        ws.transport.abort()

    asyncio.run(before_the_crash())
    server.proc = None
    server.start()
    fresh = httpx.get(server.url(f"/v1/sessions/{session['id']}"), headers=auth(key)).json()
    messages = [audio("customer", EPOCH_MS + 1_000 + i * 100, i) for i in range(10)]
    assert asyncio.run(send_all(stream_url(fresh), messages)) == []
    recs = ready_recordings(server, key, session["id"], 3)
    assert recs["mixed"]["duration"] == pytest.approx(2.0, abs=0.01)
    agent = audible(samples_of(server, key, recs["agent"]))
    customer = audible(samples_of(server, key, recs["customer"]))
    assert agent[1:10].all() and not agent[13:].any()
    assert not customer[:11].any() and customer[12:20].all()


# -- item 8: a read-only key cannot write --------------------------------------------------


def test_a_read_only_key_gets_no_token_and_cannot_end(live_server: Server, key: str) -> None:
    reader = live_server.create_key("callcenter", mode="test", scopes=["sessions:read"])
    session = new_session(live_server, key)
    got = httpx.get(live_server.url(f"/v1/sessions/{session['id']}"), headers=auth(reader))
    assert got.status_code == 200 and got.json()["stream"] is None
    ended = httpx.post(live_server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(reader))
    assert ended.status_code == 403
    assert ended.json()["error"]["type"] == "permission_error"
    # The writer's token still works.
    assert asyncio.run(send_all(stream_url(session), [audio("agent", 0)])) == []


# -- item 11: only a token issued for a session learns anything about it --------------------


@pytest.fixture(scope="module")
def cast(live_server: Server, key: str) -> dict[str, Any]:
    """Sessions of two organizations in every state, and the tokens that go with them."""
    other_key = live_server.create_key("globex", mode="test")
    mine_active, mine_ended = new_session(live_server, key), new_session(live_server, key)
    theirs_active, theirs_ended = (
        new_session(live_server, other_key),
        new_session(live_server, other_key),
    )
    for s, k in ((mine_ended, key), (theirs_ended, other_key)):
        response = httpx.post(live_server.url(f"/v1/sessions/{s['id']}/end"), headers=auth(k))
        assert response.json()["status"] == "ended"
    return {
        "paths": {
            "mine_active": mine_active["id"],
            "mine_ended": mine_ended["id"],
            "theirs_active": theirs_active["id"],
            "theirs_ended": theirs_ended["id"],
            "missing": "sess_01JZZZZZZZZZZZZZZZZZZZZZZZ",
        },
        "tokens": {
            "garbage": "kst_forged",
            "empty": "",
            "forged_shape": "kst_test_" + "A" * 44,
            "active_mine": mine_active["stream"]["token"],
            "former_of_mine_ended": mine_ended["stream"]["token"],
        },
    }


def expected_close(token: str, path: str) -> int:
    if token == "active_mine":
        return 1000 if path == "mine_active" else 4003  # valid, for another session
    if token == "former_of_mine_ended" and path == "mine_ended":
        return 4009  # the only one that may learn the session ended
    return 4001  # invalid, whatever the session's state, owner or existence


@pytest.mark.parametrize(
    "token", ["garbage", "empty", "forged_shape", "active_mine", "former_of_mine_ended"]
)
@pytest.mark.parametrize(
    "path", ["mine_active", "mine_ended", "theirs_active", "theirs_ended", "missing"]
)
def test_close_codes_tell_nothing_to_a_wrong_token(
    live_server: Server, cast: dict[str, Any], token: str, path: str
) -> None:
    url = connect_url(live_server, cast["paths"][path], cast["tokens"][token])

    async def connect() -> tuple[dict[str, Any], int]:
        async with websockets.connect(url) as ws:
            first = await next_message(ws)
            if first["type"] == "session.ready":
                return first, 1000
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return first, ws.close_code or 0

    first, code = asyncio.run(connect())
    assert code == expected_close(token, path), first
    if code != 1000:
        assert first["type"] == "session.error"


def test_two_connections_on_two_workers_share_one_timeline(start_server) -> None:  # type: ignore[no-untyped-def]
    # A bridge that opens one connection per speaker; with two workers they may well land in
    # two processes, which must agree on the origin, the start and the furthest audio.
    server = start_server(FAST, workers=2)
    key = server.create_key("acme", mode="test")
    session = new_session(server, key)

    async def call() -> list[dict[str, Any]]:
        errors = []
        async with (
            websockets.connect(stream_url(session)) as agent_ws,
            websockets.connect(stream_url(session)) as customer_ws,
        ):
            for ws in (agent_ws, customer_ws):
                assert (await next_message(ws))["type"] == "session.ready"
            steps = [
                (agent_ws, audio("agent", EPOCH_MS + 5_000, 1)),
                (customer_ws, audio("customer", EPOCH_MS, 1)),  # moves the start back 5 s
                (agent_ws, audio("agent", EPOCH_MS - 4_000, 2)),  # 4 s before the moved start
                (customer_ws, audio("customer", EPOCH_MS + 65_100, 2)),  # 60 s on: fine
                (agent_ws, audio("agent", EPOCH_MS + 125_201, 3)),  # 60.001 s on: refused
            ]
            for ws, message in steps:
                await ws.send(message)
                await ws.send('{"type":"ping"}')  # one at a time: each sees the last written
                while (reply := await next_message(ws))["type"] != "pong":
                    errors.append(reply)
            await agent_ws.send('{"type":"session.end"}')
            assert (await next_message(agent_ws))["type"] == "session.ended"
        return errors

    errors = asyncio.run(call())
    # Issue 17: each process holding a session is a writer of its own, and checks a chunk
    # against what it received itself and what was stored when it connected (not against what
    # another process received less than a flush interval ago). So the customer's chunk 60 s
    # past the agent's audio is refused when the two connections landed in two workers, and
    # accepted when they share one; the agent's last chunk is refused either way, and the
    # recording always agrees on the start (moved back by both) and on the furthest audio kept.
    codes = [e["code"] for e in errors]
    assert codes in (["timestamp_out_of_range"], ["timestamp_out_of_range"] * 2), codes
    recs = ready_recordings(server, key, session["id"], 3)
    expected = 69.2 if len(codes) == 1 else 9.1
    assert recs["mixed"]["duration"] == pytest.approx(expected, abs=0.01)
