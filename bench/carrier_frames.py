"""What one audio frame costs inside kallrec, Kallglot's protocol against Twilio's, side by side.

    .venv/bin/python bench/carrier_frames.py            # 50,000 frames each, a few seconds

No network: each message is parsed and written to a real session's track files the way the
stream handlers do it (api/stream.py: ``parse`` then ``SessionTracks.write``; api/carrier_stream.py:
JSON, the dialect's parser, the codec, the stream clock, the speaker, ``SessionTracks.write``),
alternating the two three times and keeping each one's best. Kallglot's frames carry 100 ms of
μ-law (the load generator's default), Twilio's 20 ms (what Twilio sends). BENCHMARKS.md records
the figures with the concurrent-call runs they explain.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from pathlib import Path

import numpy as np

from kallrec.api.carrier_stream import parse_frame
from kallrec.audio.mulaw import mulaw_encode
from kallrec.carriers import codec, fields
from kallrec.carriers.clock import StreamClock
from kallrec.carriers.events import Media, MediaFormat
from kallrec.carriers.speakers import speaker_for
from kallrec.live.messages import AudioChunk, parse
from kallrec.live.tracks import SessionTracks


def _payload(samples: int) -> str:
    wave = (np.sin(np.arange(samples) / 3) * 9000).astype(np.int16)
    return base64.b64encode(mulaw_encode(wave)).decode()


def native_frames(n: int) -> list[str]:
    payload = _payload(800)
    return [
        f'{{"type":"audio.input","sequence":{i},"timestamp_ms":{(i // 2) * 100},'
        f'"speaker":"{"agent" if i % 2 else "customer"}","audio":{{"encoding":"mulaw",'
        f'"sample_rate_hz":8000,"payload":"{payload}"}}}}'
        for i in range(n)
    ]


def twilio_frames(n: int) -> list[str]:
    payload = _payload(160)
    return [
        f'{{"event":"media","sequenceNumber":"{i}","streamSid":"MZ1","media":{{"track":'
        f'"{"inbound" if i % 2 else "outbound"}","chunk":"{i}","timestamp":"{(i // 2) * 20}",'
        f'"payload":"{payload}"}}}}'
        for i in range(n)
    ]


def run_native(frames: list[str], directory: Path) -> float:
    tracks = SessionTracks(directory)
    started = time.perf_counter()
    for text in frames:
        chunk = parse(text)
        assert isinstance(chunk, AudioChunk)
        tracks.write(chunk.speaker, chunk.timestamp_ms, chunk.mulaw, max_jump_ms=60_000)
    elapsed = time.perf_counter() - started
    tracks.close()
    return elapsed


def run_twilio(frames: list[str], directory: Path) -> float:
    tracks = SessionTracks(directory)
    clock = StreamClock(round(time.time() * 1000))
    fmt = MediaFormat()
    started = time.perf_counter()
    for text in frames:
        media = parse_frame(fields.load(text), "twilio")
        assert isinstance(media, Media)
        mulaw = codec.to_mulaw_8k(media.payload, fmt)
        at = clock.place(media.track, media.timestamp_ms, len(mulaw) / 8)
        tracks.write(speaker_for(media.track, None), at, mulaw, max_jump_ms=60_000)
    elapsed = time.perf_counter() - started
    tracks.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=50_000)
    args = parser.parse_args()
    native, twilio = native_frames(args.frames), twilio_frames(args.frames)
    best = {"kallglot": float("inf"), "twilio": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(3):
            best["kallglot"] = min(best["kallglot"], run_native(native, Path(tmp, f"n{round_}")))
            best["twilio"] = min(best["twilio"], run_twilio(twilio, Path(tmp, f"t{round_}")))
    per = {name: seconds / args.frames * 1e6 for name, seconds in best.items()}
    for name, us in per.items():
        print(f"{name:9} {us:6.1f} µs per frame")
    print(f"twilio / kallglot per frame: {per['twilio'] / per['kallglot']:.2f}")
    print(
        f"per second of two-party call: kallglot {per['kallglot'] * 20:.0f} µs (20 frames), "
        f"twilio {per['twilio'] * 100:.0f} µs (100 frames)"
    )


if __name__ == "__main__":
    main()
