"""The load generator's carrier calls: each dialect's frames, as the carrier sends them.

A call creates a session routed through the carrier, opens the session's stream URL the way the
carrier does (Twilio and Telnyx with the token in ``start``'s custom parameters, Plivo with it in
the URL, Vonage in the first frame's headers) and streams both parties: the customer on the
``inbound`` track, the agent on ``outbound`` (Vonage: one mixed track of both). Frames are
formatted by hand: ``json.dumps`` per frame would make the generator the bottleneck. It ends as
a carrier does (``stop``, then close; Plivo and Vonage just close) and the server ends the
session once its grace has passed (``KALLREC_CARRIER_END_GRACE_SECONDS``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

DIALECTS = ("twilio", "signalwire", "telnyx", "plivo", "vonage")
TRACKS = {"inbound": "customer", "outbound": "agent"}


def _mixed_frame(payloads: dict[str, str]) -> bytes:
    """Vonage's binary frame: the two speakers' chunks summed, 16-bit little-endian."""
    from kallrec.audio.mulaw import mulaw_decode

    both = sum(mulaw_decode(base64.b64decode(p)).astype(np.int32) for p in payloads.values())
    return np.clip(both, -32768, 32767).astype("<i2").tobytes()


def _start(dialect: str, token: str, session_id: str) -> str:
    if dialect in ("twilio", "signalwire"):
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": "MZload",
                "start": {
                    "streamSid": "MZload",
                    "accountSid": "ACload",
                    "callSid": f"CA{session_id}",
                    "tracks": ["inbound", "outbound"],
                    "customParameters": {"token": token},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
    if dialect == "telnyx":
        return json.dumps(
            {
                "event": "start",
                "sequence_number": "1",
                "stream_id": "load",
                "start": {
                    "call_control_id": f"v3:{session_id}",
                    "custom_parameters": {"token": token, "session_id": session_id},
                    "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                },
            }
        )
    if dialect == "plivo":
        return json.dumps(
            {
                "event": "start",
                "sequenceNumber": 1,
                "start": {
                    "callId": session_id,
                    "streamId": "load",
                    "tracks": ["inbound", "outbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                },
            }
        )
    return json.dumps(
        {
            "event": "websocket:connected",
            "content-type": "audio/l16;rate=8000",
            "token": token,
            "session_id": session_id,
        }
    )


def _media(dialect: str) -> Callable[[int, int, str, str], str]:
    """(sequence, timestamp_ms, track, payload) → the dialect's media frame."""
    if dialect in ("twilio", "signalwire"):
        return lambda seq, ts, track, payload: (
            f'{{"event":"media","sequenceNumber":"{seq}","streamSid":"MZload","media":'
            f'{{"track":"{track}","chunk":"{seq}","timestamp":"{ts}","payload":"{payload}"}}}}'
        )
    if dialect == "telnyx":
        return lambda seq, ts, track, payload: (
            f'{{"event":"media","sequence_number":"{seq}","stream_id":"load","media":'
            f'{{"track":"{track}","chunk":"{seq}","timestamp":"{ts}","payload":"{payload}"}}}}'
        )
    epoch = int(time.time() * 1000)
    return lambda seq, ts, track, payload: (
        f'{{"event":"media","sequenceNumber":{seq},"streamId":"load","media":'
        f'{{"track":"{track}","timestamp":"{epoch + ts}","chunk":{seq},"payload":"{payload}"}}}}'
    )


async def run_carrier_call(
    client: httpx.AsyncClient,
    dialect: str,
    seconds: float,
    chunk_ms: int,
    speed: float,
    payloads: dict[str, str],
    result: Any,
) -> None:
    """Streams one call in ``dialect``; fills ``result`` (loadgen.CallResult)."""
    import websockets

    channels = "mixed" if dialect == "vonage" else "dual"
    response = await client.post(
        "/v1/sessions",
        json={
            "mode": "ai_agent",
            "recording": {"enabled": True, "channels": channels},
            "routing": {"type": dialect},
        },
    )
    response.raise_for_status()
    session = response.json()
    result.session_id = session["id"]
    token, url = session["stream"]["token"], session["stream"]["url"]
    if dialect == "plivo":
        url = f"{url}?token={token}"
    chunks = int(seconds * 1000 // chunk_ms)
    interval = chunk_ms / 1000 / speed
    media = _media(dialect)
    mixed = _mixed_frame(payloads) if dialect == "vonage" else b""
    async with websockets.connect(url, max_queue=None, ping_interval=None) as ws:
        if dialect in ("twilio", "signalwire", "telnyx"):
            await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        await ws.send(_start(dialect, token, session["id"]))
        start = time.perf_counter()
        seq = 2
        for i in range(chunks):
            if dialect == "vonage":
                await ws.send(mixed)
                result.chunks_sent += 1
            else:
                for track, speaker in TRACKS.items():
                    await ws.send(media(seq, i * chunk_ms, track, payloads[speaker]))
                    seq += 1
                    result.chunks_sent += 1
            delay = start + (i + 1) * interval - time.perf_counter()
            result.lag_ms = max(result.lag_ms, -delay * 1000)
            if delay > 0:
                await asyncio.sleep(delay)
        if dialect in ("twilio", "signalwire"):
            await ws.send(f'{{"event":"stop","sequenceNumber":"{seq}","streamSid":"MZload"}}')
        elif dialect == "telnyx":
            await ws.send(f'{{"event":"stop","sequence_number":"{seq}","stream_id":"load"}}')
