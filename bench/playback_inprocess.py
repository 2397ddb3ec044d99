"""kallrec's own cost per request: a playback link against /audio, in-process (issue 16).

    .venv/bin/python bench/playback_inprocess.py [--rounds 5] [--requests 3000]

wrk over loopback measures the machine as much as kallrec (bench/playback_links.py); on a shared
machine its cells move by ±30 % from one run to the next. This calls the ASGI app in-process (no
sockets, no server), as bench/hot_path_compare.py does: the Python work of routing,
authorization (key + rate limit for /audio; signature + link row for a link), lookup and headers.
The cases alternate request by request in blocks, so drift hits both; the report is the median
µs per request of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from kallrec.app import create_app
from kallrec.cli.admin import create_key
from kallrec.config import Settings
from kallrec.importing import ImportRequest, import_audio
from kallrec.jobs.runner import run_one_job


async def main(rounds: int, n: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    settings = Settings.from_env({}, data_dir=tmp / "data", rate_limit_per_minute=10**9)
    app = create_app(settings, background=False)
    rt = app.start()
    secret, _, org = create_key(rt.repo, "bench", livemode=False, scopes=())
    wav = tmp / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        t = np.arange(8000 * 30) / 8000
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16).tobytes())
    (rec,) = await import_audio(rt, org.id, False, ImportRequest(wav, "call.wav"))
    while await run_one_job(rt):
        pass
    auth = (b"authorization", f"Bearer {secret}".encode())
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    def scope(method: str, url: str, *headers: tuple[bytes, bytes], body: bytes = b"") -> dict:
        parts = urlsplit(url)
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(b"host", b"bench.test"), *headers],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }

    async def made_link() -> str:
        body = b"{}"

        async def post_body() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        sent.clear()
        path = f"/v1/recordings/{rec.id}/links"
        await app(
            scope("POST", path, auth, (b"content-type", b"application/json")), post_body, send
        )
        import json

        url: str = json.loads(sent[1]["body"])["url"]
        return url.removeprefix("http://bench.test")

    link = await made_link()
    audio = f"/v1/recordings/{rec.id}/audio"
    sent.clear()
    await app(scope("GET", audio, auth), receive, send)
    etag = dict(sent[0]["headers"])[b"etag"]
    cases = {
        "cond_304": (
            scope("GET", audio, auth, (b"if-none-match", etag)),
            scope("GET", link, (b"if-none-match", etag)),
        ),
        "range_64k": (
            scope("GET", audio, auth, (b"range", b"bytes=0-65535")),
            scope("GET", link, (b"range", b"bytes=0-65535")),
        ),
        "head": (scope("HEAD", audio, auth), scope("HEAD", link)),
    }
    samples: dict[str, dict[str, list[float]]] = {c: {"audio": [], "link": []} for c in cases}
    for _ in range(rounds):
        for name, pair in cases.items():
            for kind, sc in zip(("audio", "link"), pair, strict=True):
                for _ in range(200):  # warm the caches
                    sent.clear()
                    await app(dict(sc), receive, send)
                started = time.perf_counter()
                for _ in range(n):
                    sent.clear()
                    await app(dict(sc), receive, send)
                samples[name][kind].append((time.perf_counter() - started) / n * 1e6)
                assert sent[0]["status"] in (200, 206, 304), (name, kind, sent[0]["status"])
    rt.close()
    print("| request | /audio µs | link µs | link ÷ audio |")
    print("|---|---:|---:|---:|")
    for name, s in samples.items():
        a, li = statistics.median(s["audio"]), statistics.median(s["link"])
        print(f"| `{name}` | {a:.1f} | {li:.1f} | {li / a:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests))
