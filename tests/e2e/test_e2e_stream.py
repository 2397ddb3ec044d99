"""Live calls over real WebSockets against a real server: tracks, failures, restarts, load."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from tests.e2e.helpers import Server, auth, dominant_frequency
from tests.e2e.streaming import (
    FAST,
    WINDOW,
    audible,
    new_session,
    ready_recordings,
    samples_of,
    stream_url,
    tone_chunk,
)

pytestmark = pytest.mark.e2e

CHUNK_MS = 100


def chunk_message(speaker: str, index: int, freq: float | None = None) -> str:
    """The index-th 100 ms chunk of a continuous tone."""
    return tone_chunk(
        speaker, index * CHUNK_MS, sequence=index, freq=freq, phase_samples=index * WINDOW
    )


async def expect(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == kind:
            return message
        assert message["type"] != "session.error" or kind == "session.error", message


def audible_seconds(samples: np.ndarray, threshold: float = 0.05) -> float:
    """Seconds of 100 ms windows with sound in them (silence and holes don't count)."""
    return float(audible(samples, threshold).sum()) * 0.1


@pytest.fixture(scope="module")
def live_server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers(FAST)


@pytest.fixture(scope="module")
def key(live_server: Server) -> str:
    return live_server.create_key("callcenter", mode="test")


def test_a_two_party_call_becomes_mixed_agent_and_customer(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)

    async def call() -> None:
        async with websockets.connect(stream_url(session)) as ws:
            ready = await expect(ws, "session.ready")
            assert ready["session_id"] == session["id"]
            for i in range(30):  # 3 s
                await ws.send(chunk_message("agent", i))
                if i >= 10:  # the customer speaks from 1 s on
                    await ws.send(chunk_message("customer", i))
            await ws.send('{"type":"ping"}')
            assert (await expect(ws, "pong"))["session_id"] == session["id"]
            await ws.send('{"type":"session.end"}')
            ended = await expect(ws, "session.ended")
            assert ended["reason"] == "explicit_end"

    asyncio.run(call())
    got = httpx.get(live_server.url(f"/v1/sessions/{session['id']}"), headers=auth(key)).json()
    assert got["status"] == "ended" and got["started_at"] and got["ended_at"]
    assert got["stream"] is None
    recs = ready_recordings(live_server, key, session["id"], 3)
    agent = samples_of(live_server, key, recs["agent"])
    customer = samples_of(live_server, key, recs["customer"])
    mixed = samples_of(live_server, key, recs["mixed"])
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(3.0, abs=0.01)
    assert dominant_frequency(agent[1000:20000], 8000) == pytest.approx(440, abs=5)
    assert dominant_frequency(customer[12000:22000], 8000) == pytest.approx(1200, abs=5)
    # The customer is silent for the first second (the MP3 encoder delay shifts it ~1,100 samples).
    assert audible_seconds(customer[:8800]) == 0
    assert audible_seconds(agent) == pytest.approx(3.0, abs=0.2)
    early, late = mixed[1200:7200], mixed[10000:20000]
    assert dominant_frequency(early, 8000) == pytest.approx(440, abs=5)
    spectrum = np.abs(np.fft.rfft(late * np.hanning(len(late))))
    freqs = np.fft.rfftfreq(len(late), 1 / 8000)
    assert spectrum[np.argmin(abs(freqs - 1200))] > 0.3 * spectrum.max()


def test_garbage_frames_get_errors_and_the_call_goes_on(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, channels="mixed")

    async def call() -> list[str]:
        codes = []
        async with websockets.connect(stream_url(session)) as ws:
            await expect(ws, "session.ready")
            for junk in [
                "{not json",
                "[]",
                '{"type":"nope"}',
                b"\x00\x01binary",
                '{"type": "ping", "n": ' + "9" * 5000 + "}",
                json.dumps(
                    {
                        "type": "audio.input",
                        "speaker": "agent",
                        "sequence": 1,
                        "timestamp_ms": 0,
                        "audio": {"encoding": "opus", "sample_rate_hz": 48000, "payload": ""},
                    }
                ),
            ]:
                await ws.send(junk)
                codes.append((await expect(ws, "session.error"))["code"])
            for i in range(10):
                await ws.send(chunk_message("agent", i))
            await ws.send('{"type":"session.end"}')
            await expect(ws, "session.ended")
        return codes

    codes = asyncio.run(call())
    assert codes == [
        "invalid_json",
        "invalid_message",
        "unknown_message_type",
        "invalid_message",
        "invalid_json",
        "invalid_audio_format",
    ]
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(1.0, abs=0.01)
    assert httpx.get(live_server.url("/healthz")).status_code == 200


def test_a_message_over_256_kib_closes_the_stream_with_1009_and_keeps_the_audio(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, channels="mixed")

    async def call() -> tuple[str, int | None]:
        async with websockets.connect(stream_url(session), max_size=None) as ws:
            await expect(ws, "session.ready")
            for i in range(10):
                await ws.send(chunk_message("agent", i))
            await ws.send("x" * 300_000)
            error = await expect(ws, "session.error")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        return error["code"], closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(call()) == ("message_too_large", 1009)
    ended = httpx.post(live_server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key))
    assert ended.status_code == 200, ended.text
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(1.0, abs=0.01)


def test_duplicates_and_reordered_chunks_land_in_place(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)
    order = [*list(range(20)), 3, 7, 7, 15]
    random.Random(4).shuffle(order)

    async def call() -> None:
        async with websockets.connect(stream_url(session)) as ws:
            await expect(ws, "session.ready")
            for i in order:
                await ws.send(chunk_message("agent", i))
            await ws.send('{"type":"session.end"}')
            await expect(ws, "session.ended")

    asyncio.run(call())
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert recs["agent"]["duration"] == pytest.approx(2.0, abs=0.01)
    agent = samples_of(live_server, key, recs["agent"])
    assert audible_seconds(agent) == pytest.approx(2.0, abs=0.15)
    assert dominant_frequency(agent, 8000) == pytest.approx(440, abs=5)


def test_a_dropped_connection_loses_nothing_and_reconnect_continues(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key)

    async def call() -> None:
        ws = await websockets.connect(stream_url(session))
        await expect(ws, "session.ready")
        for i in range(10):
            await ws.send(chunk_message("agent", i))
        await ws.send('{"type":"ping"}')
        await expect(ws, "pong")  # everything before the ping was processed
        ws.transport.abort()  # the network drops, no close handshake
        async with websockets.connect(stream_url(session)) as again:
            await expect(again, "session.ready")
            for i in range(10, 20):
                await again.send(chunk_message("agent", i))
            await again.send('{"type":"session.end"}')
            await expect(again, "session.ended")

    asyncio.run(call())
    recs = ready_recordings(live_server, key, session["id"], 3)
    agent = samples_of(live_server, key, recs["agent"])
    assert recs["agent"]["duration"] == pytest.approx(2.0, abs=0.01)
    assert audible_seconds(agent) == pytest.approx(2.0, abs=0.15)


def test_ending_over_http_tells_the_connected_stream(live_server: Server, key: str) -> None:
    session = new_session(live_server, key)

    async def call() -> dict[str, Any]:
        async with websockets.connect(stream_url(session)) as ws:
            await expect(ws, "session.ready")
            await ws.send(chunk_message("agent", 0))
            await asyncio.to_thread(
                httpx.post, live_server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key)
            )
            return await asyncio.wait_for(expect(ws, "session.ended"), 10)

    assert asyncio.run(call())["session_id"] == session["id"]
    ready_recordings(live_server, key, session["id"], 3)


@pytest.mark.parametrize("case", ["wrong_session", "ended", "garbage_token"])
def test_bad_tokens_are_refused_with_an_error_then_a_close_code(
    live_server: Server, key: str, case: str
) -> None:
    first, second = new_session(live_server, key), new_session(live_server, key)
    url = stream_url(first)
    expected = {"wrong_session": 4003, "ended": 4009, "garbage_token": 4001}[case]
    if case == "wrong_session":
        url = f"{second['stream']['url']}?token={first['stream']['token']}"
    elif case == "ended":
        httpx.post(live_server.url(f"/v1/sessions/{first['id']}/end"), headers=auth(key))
    else:
        url = f"{first['stream']['url']}?token=kst_forged"

    async def connect() -> tuple[dict[str, Any], int]:
        async with websockets.connect(url) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return error, ws.close_code or 0

    error, code = asyncio.run(connect())
    assert error["type"] == "session.error"
    assert code == expected


def test_expired_token_is_4001_and_get_session_gives_a_fresh_one(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server({**FAST, "KALLREC_SESSION_TOKEN_TTL_SECONDS": "1"})
    key = server.create_key("acme", mode="test")
    session = new_session(server, key)
    time.sleep(2.1)

    async def connect(url: str) -> int:
        async with websockets.connect(url) as ws:
            await ws.recv()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            return ws.close_code or 0

    assert asyncio.run(connect(stream_url(session))) == 4001
    fresh = httpx.get(server.url(f"/v1/sessions/{session['id']}"), headers=auth(key)).json()
    assert fresh["stream"]["token"] != session["stream"]["token"]

    async def use(url: str) -> str:
        async with websockets.connect(url) as ws:
            return json.loads(await ws.recv())["type"]

    assert asyncio.run(use(stream_url(fresh))) == "session.ready"


def test_killed_server_mid_call_keeps_the_audio_and_the_session_can_end(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server(FAST)
    key = server.create_key("acme", mode="test")
    session = new_session(server, key)

    async def stream_then_die() -> None:
        ws = await websockets.connect(stream_url(session))
        await expect(ws, "session.ready")
        start = time.perf_counter()
        for i in range(40):  # 4 s at real-time pace
            await ws.send(chunk_message("agent", i))
            await ws.send(chunk_message("customer", i))
            await asyncio.sleep(max(0, start + (i + 1) * 0.1 - time.perf_counter()))
        server.kill9()
        ws.transport.abort()

    asyncio.run(stream_then_die())
    server.proc = None
    server.start()
    ended = httpx.post(server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key))
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    recs = ready_recordings(server, key, session["id"], 3)
    for speaker in ("agent", "customer"):
        samples = samples_of(server, key, recs[speaker])
        assert audible_seconds(samples) >= 3.0  # at most the last second may be lost


def test_load_generator_calls_lose_nothing(live_server: Server, key: str) -> None:
    from kallrec.cli.loadgen import Options, run, summarize

    opts = Options(
        live_server.base_url,
        key,
        calls=8,
        seconds=3,
        chunk_ms=100,
        speed=2.0,
        verify=-1,
        ramp_seconds=0.5,
    )
    summary = summarize(run(opts))
    assert summary["calls_with_errors"] == 0, summary["first_errors"]
    assert summary["calls_verified"] == 8
    assert summary["lost_chunks"] == 0


def test_calls_reconnecting_across_worker_processes_lose_nothing(start_server) -> None:  # type: ignore[no-untyped-def]
    """Two worker processes on one machine (SQLite, local storage): each reconnect goes to
    whichever worker the kernel picks, each a writer of its own flushing to the same storage."""
    from kallrec.cli.loadgen import Options, run, summarize

    server = start_server(FAST, workers=2)
    key = server.create_key("acme", mode="test")
    opts = Options(
        server.base_url,
        key,
        calls=6,
        seconds=4,
        chunk_ms=100,
        speed=1.0,
        verify=-1,
        ramp_seconds=0.5,
        reconnect_every=0.7,
    )
    summary = summarize(run(opts))
    assert summary["calls_with_errors"] == 0, summary["first_errors"]
    assert summary["connections"] >= 6 * 5
    assert summary["calls_verified"] == 6
    assert summary["lost_chunks"] == 0
