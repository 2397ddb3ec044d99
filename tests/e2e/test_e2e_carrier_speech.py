"""Two people talking (espeak-ng), streamed as Twilio does, faster than real time: each voice is
in its own track and in the mix, where and when it was spoken; recording.ready reaches the
webhook endpoint once the call's stream has stopped."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.e2e import carriers
from tests.e2e.helpers import Server
from tests.e2e.streaming import FAST, ready_recordings, samples_of
from tests.e2e.test_e2e_carriers import new_session
from tests.webhooks.receiver import Receiver

pytestmark = [
    pytest.mark.e2e,
    # scripts/test installs espeak-ng; under CI a missing one fails the test instead of skipping.
    pytest.mark.skipif(
        shutil.which("espeak-ng") is None and os.environ.get("CI") != "true",
        reason="needs espeak-ng",
    ),
]

RATE = 8000
WINDOW = 400  # 50 ms
AGENT_TEXT = "Hello, thank you for calling. How can I help you today?"
CUSTOMER_TEXT = "Hi. I would like to know where my parcel is, please."
CUSTOMER_AT = 2.0  # seconds: the customer answers while the agent is finishing


def speech(tmp_path: Path, text: str, voice: str) -> np.ndarray:
    wav = tmp_path / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    samples, rate = sf.read(wav, dtype="int16")
    return carriers.resampled(samples, rate).astype(np.int16)


def envelope(samples: np.ndarray) -> np.ndarray:
    usable = samples[: len(samples) // WINDOW * WINDOW].astype(np.float64)
    return np.sqrt((usable.reshape(-1, WINDOW) ** 2).mean(axis=1))


def similarity(recorded: np.ndarray, source: np.ndarray) -> float:
    """How well the recording's loudness follows the source's, at the best shift up to 0.3 s
    (LAME's encoder delay)."""
    rec, src = envelope(recorded), envelope(source)
    best = -1.0
    for shift in range(0, 7):
        a, b = rec[shift : shift + len(src)], src[: len(rec) - shift]
        n = min(len(a), len(b))
        best = max(best, float(np.corrcoef(a[:n], b[:n])[0, 1]))
    return best


def test_two_voices_streamed_as_twilio_land_each_in_its_track_and_fire_the_webhook(
    module_servers, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    agent = speech(tmp_path, AGENT_TEXT, "en-us")
    customer = speech(tmp_path, CUSTOMER_TEXT, "en+f3")
    total = max(len(agent), int(CUSTOMER_AT * RATE) + len(customer))
    total += (-total) % 160  # whole 20 ms frames
    agent_track = np.zeros(total, np.int16)
    agent_track[: len(agent)] = agent
    customer_track = np.zeros(total, np.int16)
    customer_track[int(CUSTOMER_AT * RATE) : int(CUSTOMER_AT * RATE) + len(customer)] = customer
    env = {
        **FAST,
        "KALLREC_CARRIER_END_GRACE_SECONDS": "1",
        "KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    server: Server = module_servers(env)
    key = server.create_key("speech", mode="test")
    with Receiver() as receiver:
        server.cli(
            "webhooks", "add", receiver.url, "--org", "speech", "--mode", "test",
            "--events",
            "recording.ready,session.provider.connected,session.provider.disconnected",
        )  # fmt: skip
        session = new_session(server, key, "twilio")
        call = carriers.twilio(
            session["stream"]["token"],
            sources={"inbound": customer_track, "outbound": agent_track},
        )
        asyncio.run(carriers.play(session["stream"]["url"], call, pace=0.5))  # twice real time
        recs = ready_recordings(server, key, session["id"], 3)
        deadline = time.monotonic() + 20
        while len(receiver.snapshot()) < 5:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
    events = [json.loads(r.body) for r in receiver.snapshot()]
    ready = [e for e in events if e["type"] == "recording.ready"]
    assert {e["data"]["channel"] for e in ready} == {"mixed", "agent", "customer"}
    assert {e["data"]["session_id"] for e in ready} == {session["id"]}
    # Kallglot's provider events: the carrier's leg on (its ids known), then off.
    provider = {e["type"]: e["data"] for e in events if e["type"].startswith("session.provider")}
    assert set(provider) == {"session.provider.connected", "session.provider.disconnected"}
    connected = provider["session.provider.connected"]
    assert connected["id"] == session["id"] and connected["carrier"]["call_sid"].startswith("CA")
    assert connected["stream"] is None  # no credential in a webhook

    seconds = total / RATE
    for rec in recs.values():
        assert rec["duration"] == pytest.approx(seconds, rel=0.005)
    recorded_agent = samples_of(server, key, recs["agent"])
    recorded_customer = samples_of(server, key, recs["customer"])
    mixed = samples_of(server, key, recs["mixed"])
    assert similarity(recorded_agent, agent_track) > 0.9
    assert similarity(recorded_customer, customer_track) > 0.9
    assert similarity(recorded_agent, customer_track) < 0.5  # nobody in the other's track
    both = agent_track.astype(np.int32) + customer_track
    assert similarity(mixed, both) > 0.9
