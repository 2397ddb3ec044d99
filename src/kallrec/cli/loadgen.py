"""A load generator of live calls: N concurrent two-party calls over real WebSockets.

Each call creates a session over HTTP, streams both speakers' μ-law audio in chunks at real-time
pace (or faster), pings once a second to measure how far behind the server is, ends the session,
and then checks that nothing was lost: every chunk of each speaker must be audible, at the right
place, in that speaker's recording.

    python -m kallrec.cli.loadgen --base-url http://127.0.0.1:8000 --api-key sk_test_… \\
        --calls 500 --seconds 60 --chunk-ms 100

``--dialect twilio`` (``signalwire``, ``telnyx``, ``plivo``, ``vonage``) speaks a carrier's
media stream instead of Kallglot's protocol (cli/loadgen_carriers.py); carriers send 20 ms
chunks (``--chunk-ms 20``).

Used by the tests (small N) and by BENCHMARKS.md (large N).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from kallrec.audio.mulaw import mulaw_encode
from kallrec.cli.loadgen_carriers import DIALECTS, run_carrier_call

RATE = 8000
SPEAKER_TONES = {"agent": 440.0, "customer": 1200.0}


@dataclass
class CallResult:
    session_id: str = ""
    chunks_sent: int = 0
    pong_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lost_chunks: int = 0
    verified: bool = False
    connections: int = 0
    # How far behind its real-time schedule the call's sending fell, at worst (a saturated
    # server reads slowly, and the sender waits: no pong measures that on a carrier's stream).
    lag_ms: float = 0.0


@dataclass
class Options:
    base_url: str
    api_key: str
    calls: int
    seconds: float
    chunk_ms: int
    speed: float
    verify: int
    ramp_seconds: float
    # Seconds between planned reconnects (0: never): behind a round-robin load balancer each
    # lands on another replica. A connection the server side loses is always reopened.
    reconnect_every: float = 0.0
    dialect: str = "kallglot"


def _chunk_payloads(chunk_ms: int) -> dict[str, str]:
    """One base64 chunk per speaker: a tone, so a lost chunk shows up as silence."""
    n = RATE * chunk_ms // 1000
    t = np.arange(n) / RATE
    out = {}
    for speaker, freq in SPEAKER_TONES.items():
        # Whole cycles per chunk keep consecutive chunks continuous.
        cycles = max(1, round(freq * chunk_ms / 1000))
        wave = np.sin(2 * np.pi * cycles * t / (chunk_ms / 1000)) * 12000
        out[speaker] = base64.b64encode(mulaw_encode(wave.astype(np.int16))).decode()
    return out


async def _pinger(
    ws: Any, result: CallResult, pending: dict[str, float], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        if stop.is_set():
            return
        pending.setdefault("ping", time.perf_counter())
        try:
            await ws.send('{"type":"ping"}')
        except Exception:  # the connection went; the call reconnects
            return


async def _reader(
    ws: Any, result: CallResult, pending: dict[str, float], ended: asyncio.Event
) -> None:
    import websockets

    with contextlib.suppress(websockets.ConnectionClosed):
        await _read(ws, result, pending, ended)


async def _read(
    ws: Any, result: CallResult, pending: dict[str, float], ended: asyncio.Event
) -> None:
    async for raw in ws:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "pong" and "ping" in pending:
            result.pong_ms.append((time.perf_counter() - pending.pop("ping")) * 1000)
        elif kind == "session.error":
            result.errors.append(f"{message.get('code')}: {message.get('message')}")
        elif kind == "session.ended":
            ended.set()
            return


async def _open(url: str, result: CallResult, deadline: float) -> Any:
    """A connection to the session's stream and its reader, retried until ``deadline`` (a
    replica that died: the next one behind the load balancer takes the call, as carriers and
    SDKs reconnect)."""
    import websockets

    while True:
        try:
            ws = await websockets.connect(url, max_queue=None, ping_interval=None, open_timeout=5)
            ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if ready.get("type") != "session.ready":
                raise ConnectionError(f"no session.ready: {ready}")
            break
        except (OSError, websockets.WebSocketException, TimeoutError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"could not reconnect: {exc}") from None
            await asyncio.sleep(0.2)
    result.connections += 1
    return ws


async def run_call(
    client: httpx.AsyncClient, opts: Options, payloads: dict[str, str]
) -> CallResult:
    import websockets

    result = CallResult()
    if opts.dialect != "kallglot":
        await run_carrier_call(
            client, opts.dialect, opts.seconds, opts.chunk_ms, opts.speed, payloads, result
        )
        return result
    response = await client.post(
        "/v1/sessions",
        # Explicitly: sessions do not record unless asked (or their organization says so).
        json={"mode": "ai_agent", "recording": {"enabled": True, "channels": "dual"}},
    )
    response.raise_for_status()
    session = response.json()
    result.session_id = session["id"]
    url = f"{session['stream']['url']}?token={session['stream']['token']}"
    chunks = int(opts.seconds * 1000 // opts.chunk_ms)
    interval = opts.chunk_ms / 1000 / opts.speed
    pending: dict[str, float] = {}
    stop = asyncio.Event()

    async def connect() -> tuple[Any, asyncio.Event, list[asyncio.Task[None]]]:
        ws = await _open(url, result, time.monotonic() + 30)
        ended = asyncio.Event()
        tasks = [
            asyncio.create_task(_reader(ws, result, pending, ended)),
            asyncio.create_task(_pinger(ws, result, pending, stop)),
        ]
        return ws, ended, tasks

    ws, ended, tasks = await connect()
    connected_at = time.perf_counter()
    start = time.perf_counter()
    try:
        for i in range(chunks):
            lost = tasks[0].done()  # the reader stopped: the server side went away
            scheduled = (
                opts.reconnect_every > 0
                and time.perf_counter() - connected_at >= opts.reconnect_every
            )
            if lost or scheduled:
                for task in tasks:
                    task.cancel()
                await ws.close()
                pending.clear()
                ws, ended, tasks = await connect()
                connected_at = time.perf_counter()
            for speaker, payload in payloads.items():
                # Formatted by hand: json.dumps per chunk would make the generator the bottleneck.
                # A chunk sent into a lost connection is lost; the next one reconnects.
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(
                        f'{{"type":"audio.input","sequence":{i},"timestamp_ms":{i * opts.chunk_ms},'
                        f'"speaker":"{speaker}","audio":{{"encoding":"mulaw",'
                        f'"sample_rate_hz":8000,"payload":"{payload}"}}}}'
                    )
                result.chunks_sent += 1
            # Pace against the call's own clock so scheduling delays do not accumulate.
            delay = start + (i + 1) * interval - time.perf_counter()
            result.lag_ms = max(result.lag_ms, -delay * 1000)
            if delay > 0:
                await asyncio.sleep(delay)
        stop.set()
        if tasks[0].done():
            for task in tasks:
                task.cancel()
            ws, ended, tasks = await connect()
        await ws.send('{"type":"session.end"}')
        try:
            await asyncio.wait_for(ended.wait(), timeout=60)
        except TimeoutError:
            result.errors.append("no session.ended within 60 s")
    finally:
        for task in tasks:
            task.cancel()
        await ws.close()
    return result


async def verify_call(client: httpx.AsyncClient, opts: Options, result: CallResult) -> None:
    """Downloads each speaker's recording and counts chunks that came out silent."""
    import io

    import soundfile as sf

    deadline = time.monotonic() + 120
    # A carrier's mixed single track (Vonage) makes one recording; the others three.
    count = 1 if opts.dialect == "vonage" else 3
    while True:
        listing = (await client.get(f"/v1/sessions/{result.session_id}/recordings")).json()
        recs = {r["channel"]: r for r in listing.get("data", [])}
        if len(recs) == count and all(r["status"] == "ready" for r in recs.values()):
            break
        if time.monotonic() > deadline:
            result.errors.append(f"recordings not ready: {[r['status'] for r in recs.values()]}")
            return
        await asyncio.sleep(0.2)
    chunk = RATE * opts.chunk_ms // 1000
    expected = int(opts.seconds * 1000 // opts.chunk_ms)
    for speaker in SPEAKER_TONES if count == 3 else ("mixed",):
        audio = await client.get(f"/v1/recordings/{recs[speaker]['id']}/audio")
        samples, _ = sf.read(io.BytesIO(audio.content), dtype="float32")
        # MP3 shifts audio by the encoder delay (LAME: ~1,100 samples) with no tag to undo it:
        # line up on the first audible sample (the call starts with sound), then look at the
        # middle of each chunk.
        audible = np.flatnonzero(np.abs(samples) > 0.05)
        shift = int(audible[0]) if len(audible) else 0
        for i in range(expected):
            start = shift + i * chunk
            middle = samples[start + chunk // 4 : start + chunk - chunk // 4]
            if len(middle) == 0 or float(np.sqrt(np.mean(middle**2))) < 0.05:
                result.lost_chunks += 1
    result.verified = True


async def _run(opts: Options, share: int, offset: int) -> list[CallResult]:
    payloads = _chunk_payloads(opts.chunk_ms)
    limits = httpx.Limits(max_connections=200)
    headers = {"Authorization": f"Bearer {opts.api_key}"}
    async with httpx.AsyncClient(
        base_url=opts.base_url, headers=headers, timeout=120, limits=limits
    ) as client:

        async def one(n: int) -> CallResult:
            await asyncio.sleep(opts.ramp_seconds * n / max(1, opts.calls))
            try:
                return await run_call(client, opts, payloads)
            except Exception as exc:
                return CallResult(errors=[f"{type(exc).__name__}: {exc}"])

        results = await asyncio.gather(*(one(offset + n) for n in range(share)))
        to_verify = [r for r in results if r.session_id and not r.errors]
        budget = max(0, opts.verify - offset) if opts.verify >= 0 else len(to_verify)
        for result in to_verify[: min(budget, share)]:
            await verify_call(client, opts, result)
    return results


def _worker(opts: Options, share: int, offset: int, queue: Any) -> None:
    queue.put(asyncio.run(_run(opts, share, offset)))


def run(opts: Options, processes: int = 1) -> list[CallResult]:
    if processes <= 1:
        return asyncio.run(_run(opts, opts.calls, 0))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    shares = [opts.calls // processes + (i < opts.calls % processes) for i in range(processes)]
    offsets = [sum(shares[:i]) for i in range(processes)]
    procs = [
        ctx.Process(target=_worker, args=(opts, s, o, queue))
        for s, o in zip(shares, offsets, strict=True)
    ]
    for p in procs:
        p.start()
    results: list[CallResult] = []
    for _ in procs:
        results.extend(queue.get())
    for p in procs:
        p.join()
    return results


def summarize(results: list[CallResult]) -> dict[str, Any]:
    pongs = sorted(ms for r in results for ms in r.pong_ms)

    def pct(p: float) -> float | None:
        return round(pongs[min(len(pongs) - 1, int(p * len(pongs)))], 2) if pongs else None

    verified = [r for r in results if r.verified]
    return {
        "calls": len(results),
        "calls_with_errors": sum(1 for r in results if r.errors),
        "chunks_sent": sum(r.chunks_sent for r in results),
        "calls_verified": len(verified),
        "connections": sum(r.connections for r in results),
        "lost_chunks": sum(r.lost_chunks for r in verified),
        "pong_p50_ms": pct(0.50),
        "pong_p99_ms": pct(0.99),
        "pong_mean_ms": round(statistics.fmean(pongs), 2) if pongs else None,
        "send_lag_max_ms": round(max((r.lag_ms for r in results), default=0.0), 1),
        "first_errors": [e for r in results for e in r.errors][:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kallrec.cli.loadgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--base-url", default=os.environ.get("KALLREC_BASE_URL", "http://127.0.0.1:8000")
    )
    parser.add_argument("--api-key", default=os.environ.get("KALLREC_API_KEY"))
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each call")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--speed", type=float, default=1.0, help=">1 streams faster than real time")
    parser.add_argument("--verify", type=int, default=-1, help="calls to verify (-1: all)")
    parser.add_argument("--ramp-seconds", type=float, default=5.0, help="spread call starts")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--reconnect-every",
        type=float,
        default=0.0,
        help="seconds between planned reconnects of each call (0: only when a connection drops)",
    )
    parser.add_argument(
        "--dialect", choices=("kallglot", *DIALECTS), default="kallglot", help="the way in"
    )
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key or KALLREC_API_KEY is required")
    opts = Options(
        args.base_url,
        args.api_key,
        args.calls,
        args.seconds,
        args.chunk_ms,
        args.speed,
        args.verify,
        args.ramp_seconds,
        args.reconnect_every,
        args.dialect,
    )
    started = time.perf_counter()
    summary = summarize(run(opts, args.processes))
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    json.dump(summary, sys.stdout, indent=2)
    print()
    ok = summary["calls_with_errors"] == 0 and summary["lost_chunks"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
