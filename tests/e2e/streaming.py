"""What the live-call end-to-end tests share: sessions, μ-law tone chunks, the WebSocket's replies,
recordings once ready and how much of them is audible. Driven over HTTP and WebSocket only."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import numpy as np

from kallrec.audio.mulaw import mulaw_encode
from tests.e2e.helpers import Server, auth, decode_mp3

FAST = {"KALLREC_JOB_POLL_SECONDS": "0.05"}
TONES = {"agent": 440.0, "customer": 1200.0}
WINDOW = 800  # 100 ms at 8 kHz


def tone_chunk(
    speaker: str,
    timestamp_ms: int,
    sequence: int = 1,
    ms: int = 100,
    freq: float | None = None,
    phase_samples: int = 0,
) -> str:
    """An ``audio.input`` message: ``ms`` of the speaker's tone (or ``freq``) as μ-law."""
    t = (np.arange(8 * ms) + phase_samples) / 8000
    wave = (np.sin(2 * np.pi * (freq or TONES[speaker]) * t) * 12000).astype(np.int16)
    return json.dumps(
        {
            "type": "audio.input",
            "sequence": sequence,
            "timestamp_ms": timestamp_ms,
            "speaker": speaker,
            "audio": {
                "encoding": "mulaw",
                "sample_rate_hz": 8000,
                "payload": base64.b64encode(mulaw_encode(wave)).decode(),
            },
        }
    )


def new_session(
    server: Server, key: str, channels: str = "dual", mode: str = "ai_agent"
) -> dict[str, Any]:
    response = httpx.post(
        server.url("/v1/sessions"),
        headers=auth(key),
        json={"mode": mode, "recording": {"enabled": True, "channels": channels}},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def stream_url(session: dict[str, Any]) -> str:
    return f"{session['stream']['url']}?token={session['stream']['token']}"


async def next_message(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[no-any-return]


def ready_recordings(
    server: Server, key: str, session_id: str, count: int, timeout: float = 60
) -> dict[str, dict[str, Any]]:
    """The session's ``count`` recordings by channel, once every one of them is ready."""
    deadline = time.monotonic() + timeout
    data: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        data = httpx.get(
            server.url(f"/v1/sessions/{session_id}/recordings"), headers=auth(key)
        ).json()["data"]
        if len(data) == count and all(r["status"] == "ready" for r in data):
            return {r["channel"]: r for r in data}
        time.sleep(0.1)
    raise AssertionError(f"recordings of {session_id} not ready: {data}")


def samples_of(server: Server, key: str, rec: dict[str, Any]) -> np.ndarray:
    response = httpx.get(server.audio_url(rec["id"]), headers=auth(key))
    assert response.status_code == 200
    decoded = decode_mp3(response.content)
    assert decoded.sample_rate == 8000 and decoded.channels == 1
    return decoded.samples


def audible(samples: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """One flag per 100 ms window: is there sound in it? (LAME's encoder delay, ~1,100 samples,
    shifts everything by a bit more than one window.)"""
    windows = samples[: len(samples) // WINDOW * WINDOW].reshape(-1, WINDOW)
    return np.sqrt((windows**2).mean(axis=1)) > threshold  # type: ignore[no-any-return]
