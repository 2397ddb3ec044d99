"""Each carrier's media stream, played as its documentation shows it, against a real server:
the session's recordings are checked by decoding them (duration, who speaks where and when)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from kallrec.audio.mulaw import mulaw_encode
from tests.e2e import carriers
from tests.e2e.helpers import Server, auth, band_power, dominant_frequency
from tests.e2e.streaming import FAST, ready_recordings, samples_of, tone_chunk

pytestmark = pytest.mark.e2e

RATE = 8000
# The recordings' decoded duration: the call's, within 0.5 %.
TOLERANCE = carriers.SECONDS * 0.005


@pytest.fixture(scope="module")
def live_server(module_servers) -> Server:  # type: ignore[no-untyped-def]
    return module_servers({**FAST, "KALLREC_CARRIER_END_GRACE_SECONDS": "1"})


@pytest.fixture(scope="module")
def key(live_server: Server) -> str:
    return live_server.create_key("carriers", mode="test")


def new_session(
    server: Server, key: str, carrier: str, channels: str = "dual", direction: str | None = None
) -> dict[str, Any]:
    routing: dict[str, Any] = {"type": carrier}
    if direction:
        routing["direction"] = direction
    response = httpx.post(
        server.url("/v1/sessions"),
        headers=auth(key),
        json={
            "mode": "ai_agent",
            "recording": {"enabled": True, "channels": channels},
            "routing": routing,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def window(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * RATE) : int(end * RATE)]


def loud(samples: np.ndarray) -> bool:
    return float(np.sqrt((samples**2).mean())) > 0.05


def assert_agent_then_customer(
    recs: dict[str, dict[str, Any]], server: Server, key: str, tolerance: float = TOLERANCE
) -> None:
    """The call of tests/e2e/carriers.py: agent (440 Hz) 0-2 s, customer (1,200 Hz) 1-3 s.
    Windows keep 0.3 s away from each edge (LAME's delay shifts the audio by ~0.14 s)."""
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(carriers.SECONDS, abs=tolerance), rec
    mixed = samples_of(server, key, recs["mixed"])
    assert dominant_frequency(window(mixed, 0.3, 0.8), RATE) == pytest.approx(440, abs=15)
    assert dominant_frequency(window(mixed, 2.3, 2.8), RATE) == pytest.approx(1200, abs=15)
    both = window(mixed, 1.3, 1.8)
    assert band_power(both, RATE, 440) > 0.2 * band_power(both, RATE, 1200)
    assert band_power(both, RATE, 1200) > 0.2 * band_power(both, RATE, 440)
    if "agent" in recs:
        agent = samples_of(server, key, recs["agent"])
        assert dominant_frequency(window(agent, 0.3, 1.8), RATE) == pytest.approx(440, abs=15)
        assert not loud(window(agent, 2.4, 2.9))
        customer = samples_of(server, key, recs["customer"])
        assert dominant_frequency(window(customer, 1.3, 2.8), RATE) == pytest.approx(1200, abs=15)
        assert not loud(window(customer, 0.2, 0.8))


def get_session(server: Server, key: str, session_id: str) -> dict[str, Any]:
    return httpx.get(server.url(f"/v1/sessions/{session_id}"), headers=auth(key)).json()  # type: ignore[no-any-return]


def test_twilio_at_the_kallglot_url_with_its_token_in_a_parameter_records_both_parties(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio")
    url = session["stream"]["url"]  # as Kallglot's guide: no query string, token as <Parameter>
    assert "?" not in url
    sent_back = asyncio.run(carriers.play(url, carriers.twilio(session["stream"]["token"]), pace=1))
    assert sent_back == []  # nothing a carrier could misread
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key)
    ended = get_session(live_server, key, session["id"])
    assert ended["status"] == "ended"
    assert ended["carrier"]["call_sid"] == "CA00000000000000000000000000000001"
    assert ended["carrier"]["stream_sid"] == "MZ00000000000000000000000000000001"
    assert ended["carrier"]["carrier"] == "twilio"
    # searchable by any of them
    for carrier_id, found in (("CA00000000000000000000000000000001", True), ("CA_%", False)):
        listed = httpx.get(
            live_server.url("/v1/sessions"),
            params={"carrier_id": carrier_id, "limit": 100},
            headers=auth(key),
        )
        assert listed.status_code == 200, listed.text
        assert (session["id"] in [s["id"] for s in listed.json()["data"]]) is found


def test_a_carrier_session_hands_out_its_markup_with_the_token(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio")
    carrier = session["stream"]["carrier"]
    assert carrier["markup_type"] == "twiml" and carrier["url"] == session["stream"]["url"]
    assert session["stream"]["token"] in carrier["markup"]
    fresh = get_session(live_server, key, session["id"])["stream"]["carrier"]
    assert fresh["markup"] == carrier["markup"]


def test_signalwire_out_of_order_duplicated_fast_and_closed_without_stop(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "signalwire")
    call = carriers.twilio(session["stream"]["token"], stop=False, shuffle=True, duplicate=True)
    asyncio.run(carriers.play(session["stream"]["url"], call))
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key)
    assert get_session(live_server, key, session["id"])["carrier"]["carrier"] == "signalwire"


@pytest.mark.parametrize("pace", [0.0, 1.0], ids=["fast", "real-time"])
def test_a_twilio_reconnect_with_a_new_stream_sid_continues_the_same_recording(
    live_server: Server, key: str, pace: float
) -> None:
    session = new_session(live_server, key, "twilio")
    full = carriers.twilio(session["stream"]["token"], extras=False)
    media = [f for f in full.frames if isinstance(f, dict) and f["event"] == "media"]
    half = len(media) // 2
    first = carriers.Call(full.frames[:2] + media[:half] + [full.frames[-1]])
    second = carriers.twilio(session["stream"]["token"], extras=False, stream_sid="MZ2")
    # The second stream counts its time from 0 again, as a new Twilio stream does.
    rest = []
    for frame in media[half:]:
        moved = {**frame, "streamSid": "MZ2", "media": dict(frame["media"])}
        moved["media"]["timestamp"] = str(int(frame["media"]["timestamp"]) - 1500)
        rest.append(moved)
    second = carriers.Call(second.frames[:2] + rest + [second.frames[-1]])
    asyncio.run(carriers.play(session["stream"]["url"], first, pace=pace))
    asyncio.run(carriers.play(session["stream"]["url"], second, pace=pace))
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key)
    assert get_session(live_server, key, session["id"])["carrier"]["stream_sid"] == "MZ2"


def test_an_outbound_call_swaps_the_tracks(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "twilio", direction="outbound")
    asyncio.run(
        carriers.play(session["stream"]["url"], carriers.twilio(session["stream"]["token"]))
    )
    recs = ready_recordings(live_server, key, session["id"], 3)
    # inbound (the 1,200 Hz voice here) is the agent on an outbound call
    agent = samples_of(live_server, key, recs["agent"])
    assert dominant_frequency(window(agent, 1.3, 2.8), RATE) == pytest.approx(1200, abs=15)


def test_a_single_inbound_track_still_makes_a_correct_mixed_recording(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio", channels="mixed")
    call = carriers.twilio(session["stream"]["token"], tracks=("inbound",))
    asyncio.run(carriers.play(session["stream"]["url"], call))
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(carriers.SECONDS, abs=TOLERANCE)
    mixed = samples_of(live_server, key, recs["mixed"])
    assert not loud(window(mixed, 0.2, 0.8))
    assert dominant_frequency(window(mixed, 1.3, 2.8), RATE) == pytest.approx(1200, abs=15)


def test_telnyx_texml_l16_with_token_and_session_id_parameters(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "telnyx")
    call = carriers.telnyx(session["stream"]["token"], session["id"], l16=True)
    asyncio.run(carriers.play(session["stream"]["url"], call))
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key)
    carrier = get_session(live_server, key, session["id"])["carrier"]
    assert carrier["call_control_id"].startswith("v3:")


def test_telnyx_l16_sent_little_endian_is_still_heard_right(live_server: Server, key: str) -> None:
    """RTP's L16 is big-endian, but a sender that gets it wrong is still recorded correctly:
    the audio shows its byte order."""
    session = new_session(live_server, key, "telnyx")
    call = carriers.telnyx(session["stream"]["token"], None, l16=True, order="<i2")
    asyncio.run(carriers.play(session["stream"]["url"], call))
    assert_agent_then_customer(
        ready_recordings(live_server, key, session["id"], 3), live_server, key
    )


def test_telnyx_call_control_pcmu_with_the_token_in_the_url(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "telnyx")
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    assert asyncio.run(carriers.play(url, carriers.telnyx(None, None))) == []
    assert_agent_then_customer(
        ready_recordings(live_server, key, session["id"], 3), live_server, key
    )


def test_plivo_l16_16khz_token_in_the_url_closed_without_stop(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "plivo")
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    assert asyncio.run(carriers.play(url, carriers.plivo())) == []  # not even session.ready
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key)
    assert get_session(live_server, key, session["id"])["carrier"]["call_id"].startswith("1234")


def test_vonage_token_in_the_ncco_headers_single_mixed_track(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "vonage", channels="mixed")
    call = carriers.vonage(session["stream"]["token"], session["id"])
    asyncio.run(carriers.play(session["stream"]["url"], call))
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert_agent_then_customer(recs, live_server, key)
    assert get_session(live_server, key, session["id"])["carrier"]["uuid"].startswith("aaaa")


def test_kallglot_older_audio_messages_stereo_pcm16(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "sip")

    async def call() -> None:
        url = f"{session['stream']['url']}?token={session['stream']['token']}"
        async with websockets.connect(url) as ws:
            assert '"session.ready"' in await ws.recv()
            for message in carriers.older_audio():
                await ws.send(message)
            await ws.send('{"type": "end"}')
            assert '"session.ended"' in await asyncio.wait_for(ws.recv(), 10)

    asyncio.run(call())
    assert_agent_then_customer(
        ready_recordings(live_server, key, session["id"], 3), live_server, key
    )


def test_a_stream_that_never_shows_a_token_is_closed_4001_and_records_nothing(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio")

    async def call() -> int | None:
        async with websockets.connect(session["stream"]["url"]) as ws:
            for frame in carriers.twilio(None).frames[:30]:
                await ws.send(carriers.json.dumps(frame))
            started = time.monotonic()
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert time.monotonic() - started < 7
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(call()) == 4001
    assert get_session(live_server, key, session["id"])["status"] == "created"


def test_a_telnyx_session_id_parameter_of_another_session_is_4003(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "telnyx")
    other = new_session(live_server, key, "telnyx")
    call = carriers.telnyx(session["stream"]["token"], other["id"])

    async def play() -> int | None:
        async with websockets.connect(session["stream"]["url"]) as ws:
            for frame in call.frames[:2]:
                await ws.send(carriers.json.dumps(frame))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(play()) == 4003


def test_kallglots_own_protocol_still_works_on_a_carrier_session(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio", channels="mixed")

    async def call() -> None:
        url = f"{session['stream']['url']}?token={session['stream']['token']}"
        async with websockets.connect(url) as ws:
            assert '"session.ready"' in await asyncio.wait_for(ws.recv(), 10)
            await ws.send(tone_chunk("agent", 0, ms=1000))
            await ws.send('{"type": "session.end"}')
            assert '"session.ended"' in await asyncio.wait_for(ws.recv(), 10)

    asyncio.run(call())
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("dialect", ["twilio", "telnyx", "plivo", "vonage"])
def test_the_load_generator_speaks_each_dialect_and_loses_nothing(
    live_server: Server, key: str, dialect: str
) -> None:
    from kallrec.cli.loadgen import Options, run, summarize

    opts = Options(
        live_server.base_url,
        key,
        calls=4,
        seconds=2,
        chunk_ms=20,
        speed=2.0,
        verify=-1,
        ramp_seconds=0.3,
        dialect=dialect,
    )
    summary = summarize(run(opts))
    assert summary["calls_with_errors"] == 0, summary["first_errors"]
    assert summary["calls_verified"] == 4
    assert summary["lost_chunks"] == 0


def test_one_stream_per_leg_merges_on_one_timeline(live_server: Server, key: str) -> None:
    """The caller's leg and the agent's leg each streamed on their own (inbound track only);
    the agent's leg says it is the outbound leg, so its inbound track is the agent."""
    session = new_session(live_server, key, "twilio")
    token, url = session["stream"]["token"], session["stream"]["url"]
    caller_leg = carriers.twilio(
        token, tracks=("inbound",), sources={"inbound": carriers.customer()}, stream_sid="MZa"
    )
    agent_leg = carriers.twilio(
        token,
        tracks=("inbound",),
        sources={"inbound": carriers.agent()},
        stream_sid="MZb",
        params={"direction": "outbound"},
    )

    async def both() -> None:
        await asyncio.gather(
            carriers.play(url, caller_leg, pace=1), carriers.play(url, agent_leg, pace=1)
        )

    asyncio.run(both())
    # Two legs line up on the server's clock as their first frames arrive: as closely as the
    # two connections' timing, which a loaded machine stretches to some tens of ms.
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert_agent_then_customer(recs, live_server, key, tolerance=0.1)


def test_a_carrier_token_of_an_ended_session_is_4009(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "twilio")
    ended = httpx.post(live_server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key))
    assert ended.status_code == 200
    frames = carriers.twilio(session["stream"]["token"]).frames[:2]

    async def play() -> tuple[int | None, list[str]]:
        got: list[str] = []
        async with websockets.connect(session["stream"]["url"]) as ws:
            for frame in frames:
                await ws.send(carriers.json.dumps(frame))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    got.append(str(await asyncio.wait_for(ws.recv(), 10)))
            return (closed.value.rcvd.code if closed.value.rcvd else None), got

    code, got = asyncio.run(play())
    assert code == 4009
    assert got and '"session_ended"' in got[0]  # spec §6: a session.error first


def test_a_frame_over_256_kib_closes_the_carrier_stream_keeping_what_came_before(
    live_server: Server, key: str
) -> None:
    session = new_session(live_server, key, "twilio", channels="mixed")
    call = carriers.twilio(session["stream"]["token"], extras=False, stop=False)
    call.frames.append({"event": "media", "streamSid": "MZ", "media": {"payload": "A" * 300_000}})

    async def play() -> int | None:
        async with websockets.connect(session["stream"]["url"], max_size=None) as ws:
            for frame in call.frames:
                await ws.send(carriers.json.dumps(frame))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(play()) == 1009
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(carriers.SECONDS, abs=TOLERANCE)


def test_telnyx_streaming_auth_token_header(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "telnyx", channels="mixed")
    headers = {"x-telnyx-streaming-auth-token": session["stream"]["token"]}
    call = carriers.telnyx(None, None)
    assert asyncio.run(carriers.play(session["stream"]["url"], call, headers=headers)) == []
    recs = ready_recordings(live_server, key, session["id"], 1)
    assert recs["mixed"]["duration"] == pytest.approx(carriers.SECONDS, abs=TOLERANCE)


def test_older_audio_mono_mulaw_and_a_bad_encoding(live_server: Server, key: str) -> None:
    session = new_session(live_server, key, "sip", channels="dual")
    agent = mulaw_encode(carriers.agent())
    step = 1600  # 200 ms

    async def call() -> dict[str, Any]:
        url = f"{session['stream']['url']}?token={session['stream']['token']}"
        async with websockets.connect(url) as ws:
            assert '"session.ready"' in await ws.recv()
            for i in range(0, len(agent), step):
                await ws.send(
                    json.dumps(
                        {"type": "audio", "data": carriers.b64(agent[i : i + step]),
                         "encoding": "mulaw", "sample_rate": 8000, "channels": 1,
                         "speaker": "agent"}
                    )
                )  # fmt: skip
            await ws.send(json.dumps({"type": "audio", "data": "AAAA", "encoding": "opus"}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.send('{"type": "end"}')
            assert '"session.ended"' in await asyncio.wait_for(ws.recv(), 10)
            return error  # type: ignore[no-any-return]

    error = asyncio.run(call())
    assert (error["type"], error["code"]) == ("session.error", "invalid_audio_format")
    recs = ready_recordings(live_server, key, session["id"], 3)
    assert recs["agent"]["duration"] == pytest.approx(carriers.SECONDS, abs=TOLERANCE)
    agent_rec = samples_of(live_server, key, recs["agent"])
    assert dominant_frequency(window(agent_rec, 0.3, 1.8), RATE) == pytest.approx(440, abs=15)
