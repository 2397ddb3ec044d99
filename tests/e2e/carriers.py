"""Carriers as the e2e tests play them: a two-party call, turned into each carrier's frames as its
public documentation shows them (docs/carriers.md), and sent over a real WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
import websockets

from kallrec.audio.mulaw import mulaw_encode

# The call: the agent speaks (a 440 Hz voice) for its first two seconds, the customer (1,200 Hz)
# from 1 s to the end, 3 s in all. Every track lasts the whole call (silence where it is quiet),
# as a carrier's tracks do.
SECONDS = 3.0
AGENT_HZ, CUSTOMER_HZ = 440.0, 1200.0
AGENT_SPAN, CUSTOMER_SPAN = (0.0, 2.0), (1.0, 3.0)
CHUNK_MS = 20


def voice(freq: float, span: tuple[float, float], rate: int) -> np.ndarray:
    t = np.arange(int(SECONDS * rate)) / rate
    wave = np.sin(2 * np.pi * freq * t) * 0.35 * 32767
    wave[(t < span[0]) | (t >= span[1])] = 0
    return wave.astype(np.int16)


def agent(rate: int = 8000) -> np.ndarray:
    return voice(AGENT_HZ, AGENT_SPAN, rate)


def customer(rate: int = 8000) -> np.ndarray:
    return voice(CUSTOMER_HZ, CUSTOMER_SPAN, rate)


def chunks(samples: np.ndarray, rate: int) -> Iterator[tuple[int, np.ndarray]]:
    step = rate * CHUNK_MS // 1000
    for i in range(0, len(samples), step):
        yield i * 1000 // rate, samples[i : i + step]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Call:
    """What a test sends: frames (JSON objects or bytes), in order, with where the client may
    sleep to keep real pace."""

    frames: list[dict[str, Any] | bytes | str] = field(default_factory=list)

    def add(self, frame: dict[str, Any] | bytes | str) -> None:
        """A JSON frame (dict), a binary one (bytes), or raw text as is (str)."""
        self.frames.append(frame)


def twilio(
    token: str | None,
    *,
    tracks: tuple[str, ...] = ("inbound", "outbound"),
    stream_sid: str = "MZ00000000000000000000000000000001",
    extras: bool = True,
    stop: bool = True,
    shuffle: bool = False,
    duplicate: bool = False,
    sources: dict[str, np.ndarray] | None = None,
    params: dict[str, str] | None = None,
) -> Call:
    """Twilio Media Streams: connected, start (token in customParameters), media per track
    (μ-law 8 kHz, 20 ms, timestamps from the stream's start), dtmf and mark among them, stop."""
    call = Call()
    call.add({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    params = {**({"token": token} if token else {}), **(params or {})}
    call.add(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": "AC00000000000000000000000000000001",
                "streamSid": stream_sid,
                "callSid": "CA00000000000000000000000000000001",
                "tracks": list(tracks),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
        }
    )
    media: list[dict[str, Any]] = []
    sources = sources or {"inbound": customer(), "outbound": agent()}
    pieces = {track: list(chunks(sources[track], 8000)) for track in tracks}
    seq = 2
    for index in range(len(pieces[tracks[0]])):
        for track in tracks:
            ts, samples = pieces[track][index]
            media.append(
                {
                    "event": "media",
                    "sequenceNumber": str(seq),
                    "streamSid": stream_sid,
                    "media": {
                        "track": track,
                        "chunk": str(index + 1),
                        "timestamp": str(ts),
                        "payload": b64(mulaw_encode(samples)),
                    },
                }
            )
            seq += 1
    _disorder(media, shuffle, duplicate)
    for i, frame in enumerate(media):
        call.add(frame)
        if extras and i == 40:
            call.add(
                {
                    "event": "dtmf",
                    "streamSid": stream_sid,
                    "sequenceNumber": "900",
                    "dtmf": {"track": "inbound_track", "digit": "5"},
                }
            )
            call.add(
                {
                    "event": "mark",
                    "streamSid": stream_sid,
                    "sequenceNumber": "901",
                    "mark": {"name": "greeting"},
                }
            )
            call.add({"event": "some_future_event", "streamSid": stream_sid})
            call.add({"event": "media", "streamSid": stream_sid, "media": {"payload": 7}})
            call.add("not JSON {")
            call.add("[1, 2, 3]")
            call.add(b"\x00\x01\x02")  # Twilio never sends binary: skipped
    if stop:
        call.add(
            {
                "event": "stop",
                "sequenceNumber": str(seq),
                "streamSid": stream_sid,
                "stop": {
                    "accountSid": "AC00000000000000000000000000000001",
                    "callSid": "CA00000000000000000000000000000001",
                },
            }
        )
    return call


def _disorder(media: list[dict[str, Any]], shuffle: bool, duplicate: bool) -> None:
    rng = random.Random(7)
    if shuffle:  # swap neighbours here and there: out of order by a chunk or two
        for i in range(2, len(media) - 2, 7):
            j = i + rng.choice((1, 2))
            media[i], media[j] = media[j], media[i]
    if duplicate:
        for i in range(len(media) - 1, 0, -11):
            media.insert(i, dict(media[i - 1]))


def telnyx(
    token: str | None, session_id: str | None, *, l16: bool = False, order: str = ">i2"
) -> Call:
    """Telnyx: connected, start (custom_parameters token/session_id, media_format), media per
    track (PCMU 8 kHz, or L16 16 kHz big-endian RTP payloads), dtmf, stop."""
    call = Call()
    stream_id = "32de0dea-53cb-4b21-89a4-9e1819c043bc"
    call.add({"event": "connected", "version": "1.0.0"})
    params = {k: v for k, v in (("token", token), ("session_id", session_id)) if v}
    rate = 16000 if l16 else 8000
    call.add(
        {
            "event": "start",
            "sequence_number": "1",
            "stream_id": stream_id,
            "start": {
                "user_id": "3e6f995f-85f7-4705-9741-53b116d28237",
                "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
                "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
                "from": "+13122010094",
                "to": "+13122123456",
                "client_state": "aGF2ZQ==",
                "custom_parameters": params,
                "media_format": {
                    "encoding": "L16" if l16 else "PCMU",
                    "sample_rate": rate,
                    "channels": 1,
                },
            },
        }
    )
    sources = {"inbound": customer(rate), "outbound": agent(rate)}
    pieces = {track: list(chunks(sources[track], rate)) for track in sources}
    seq = 2
    for index in range(len(pieces["inbound"])):
        for track in ("inbound", "outbound"):
            ts, samples = pieces[track][index]
            payload = samples.astype(order).tobytes() if l16 else mulaw_encode(samples)
            call.add(
                {
                    "event": "media",
                    "sequence_number": str(seq),
                    "stream_id": stream_id,
                    "media": {
                        "track": track,
                        "chunk": str(index + 1),
                        "timestamp": str(ts),
                        "payload": b64(payload),
                    },
                }
            )
            seq += 1
        if index == 30:
            call.add(
                {
                    "event": "dtmf",
                    "sequence_number": str(seq),
                    "stream_id": stream_id,
                    "occurred_at": "2024-01-01T00:00:00Z",
                    "dtmf": {"digit": "1"},
                }
            )
    call.add(
        {
            "event": "stop",
            "sequence_number": str(seq + 1),
            "stream_id": stream_id,
            "stop": {
                "user_id": "3e6f995f-85f7-4705-9741-53b116d28237",
                "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
            },
        }
    )
    return call


def plivo(*, l16_rate: int | None = 16000, stop: bool = False) -> Call:
    """Plivo: start (mediaFormat, tracks, extra_headers), media per track with epoch-ms
    timestamps, dtmf; Plivo sends no stop before closing (it is sent when asked: ``stop``)."""
    call = Call()
    stream_id = "87654321-4321-4321-4321-cba987654321"
    rate = l16_rate or 8000
    encoding = "audio/x-l16" if l16_rate else "audio/x-mulaw"
    call.add(
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {
                "callId": "12345678-1234-1234-1234-123456789abc",
                "streamId": stream_id,
                "accountId": "MAXXXXXXXXXXXXXXXXXX",
                "tracks": ["inbound", "outbound"],
                "mediaFormat": {"encoding": encoding, "sampleRate": rate},
            },
            "extra_headers": "userId=12345;crm=abc",
        }
    )
    epoch = int(time.time() * 1000)
    sources = {"inbound": customer(rate), "outbound": agent(rate)}
    pieces = {track: list(chunks(sources[track], rate)) for track in sources}
    seq = 2
    for index in range(len(pieces["inbound"])):
        for track in ("inbound", "outbound"):
            ts, samples = pieces[track][index]
            payload = samples.astype("<i2").tobytes() if l16_rate else mulaw_encode(samples)
            call.add(
                {
                    "event": "media",
                    "sequenceNumber": seq,
                    "streamId": stream_id,
                    "media": {
                        "track": track,
                        "timestamp": str(epoch + ts),
                        "chunk": index + 1,
                        "payload": b64(payload),
                    },
                    "extra_headers": "userId=12345;crm=abc",
                }
            )
            seq += 1
        if index == 20:
            call.add(
                {
                    "event": "dtmf",
                    "sequenceNumber": seq,
                    "streamId": stream_id,
                    "dtmf": {"track": "inbound", "digit": "9"},
                }
            )
    if stop:
        call.add({"event": "stop", "sequenceNumber": seq, "streamId": stream_id})
    return call


def vonage(token: str | None, session_id: str, rate: int = 16000) -> Call:
    """Vonage: websocket:connected with the NCCO's headers, then binary 16-bit little-endian
    frames of 20 ms of the conversation's mix (a single track)."""
    call = Call()
    headers = {"session_id": session_id, "uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"}
    if token:
        headers["token"] = token
    call.add({"event": "websocket:connected", "content-type": f"audio/l16;rate={rate}", **headers})
    mix = (agent(rate).astype(np.int32) + customer(rate).astype(np.int32)) // 2
    for _, samples in chunks(mix.astype(np.int16), rate):
        call.add(samples.astype("<i2").tobytes())
    return call


def older_audio(rate: int = 16000) -> list[str]:
    """Kallglot's older `audio` messages: pcm_16 stereo (left agent, right customer), 100 ms."""
    stereo = np.stack([agent(rate), customer(rate)], axis=1)
    step = rate // 10
    return [
        json.dumps(
            {
                "type": "audio",
                "data": b64(stereo[i : i + step].astype("<i2").tobytes()),
                "encoding": "pcm_16",
                "sample_rate": rate,
                "channels": 2,
            }
        )
        for i in range(0, len(stereo), step)
    ]


async def play(
    url: str,
    call: Call,
    *,
    pace: float = 0.0,
    close: bool = True,
    headers: dict[str, str] | None = None,
) -> list[Any]:
    """Sends the call's frames (sleeping ``pace`` seconds per 20 ms chunk of audio: 1.0 is real
    time, 0 as fast as possible) and returns whatever the server sent back."""
    received: list[Any] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        for frame in call.frames:
            if isinstance(frame, bytes | str):
                await ws.send(frame)
                if pace and isinstance(frame, bytes):
                    await asyncio.sleep(0.02 * pace)
            else:
                await ws.send(json.dumps(frame))
                if pace and frame.get("event") == "media":
                    await asyncio.sleep(0.01 * pace)  # two tracks per 20 ms
        if close:
            await ws.close()
        try:
            while True:
                received.append(await asyncio.wait_for(ws.recv(), 0.2))
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    return received


def resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    return np.asarray(soxr.resample(samples, rate, 8000))
