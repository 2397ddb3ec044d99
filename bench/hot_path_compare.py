"""kallrec's own cost per hot request, two source trees side by side (design §4).

    .venv/bin/python bench/hot_path_compare.py --before /tmp/kallrec-before/src --after src

Each tree runs in its own child process (PYTHONPATH=<tree>), on a fresh data dir with one ready
recording, and calls the ASGI app in-process (no sockets, no server): what is measured is the
Python work of routing, auth, rate limiting, lookup and headers, which is what a change to the
hot path moves. The children alternate (before, after, before, ...) so drift on a shared machine
hits both; the report is the median µs per request of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import asyncio, json, sys, tempfile, time, wave
from pathlib import Path

import numpy as np

from kallrec.app import create_app
from kallrec.config import Settings
from kallrec.importing import ImportRequest, import_audio
from kallrec.jobs.runner import run_one_job
try:
    from kallrec.cli.admin import create_key
except ImportError:  # trees before the cli/ package
    from kallrec.admin import create_key

N = int(sys.argv[1])


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    settings = Settings.from_env({}, data_dir=tmp / "data", rate_limit_per_minute=10**9)
    app = create_app(settings, background=False)
    rt = app.start()
    secret, _, org = create_key(rt.repo, "bench", livemode=False, scopes=())
    wav = tmp / "call.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
        t = np.arange(8000 * 30) / 8000
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16).tobytes())
    (rec,) = await import_audio(rt, org.id, False, ImportRequest(wav, "call.wav"))
    while await run_one_job(rt):
        pass
    auth = (b"authorization", f"Bearer {secret}".encode())

    def scope(path, *extra):
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "query_string": b"", "root_path": "", "headers": [auth, *extra],
                "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    audio = f"/v1/recordings/{rec.id}/audio"
    sent.clear()
    await app(scope(audio), receive, send)
    etag = dict(sent[0]["headers"])[b"etag"]
    cases = {
        "metadata": scope(f"/v1/recordings/{rec.id}"),
        "cond_304": scope(audio, (b"if-none-match", etag)),
        "range_64k": scope(audio, (b"range", b"bytes=0-65535")),
    }
    results = {}
    for name, sc in cases.items():
        for _ in range(200):  # warm the caches
            sent.clear(); await app(dict(sc), receive, send)
        started = time.perf_counter()
        for _ in range(N):
            sent.clear(); await app(dict(sc), receive, send)
        results[name] = (time.perf_counter() - started) / N * 1e6
        status = sent[0]["status"]
        assert status in (200, 206, 304), (name, status)
    rt.close()
    print(json.dumps(results))


asyncio.run(main())
"""


def run(tree: Path, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n)], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the src dir of the old tree")
    parser.add_argument("--after", type=Path, default=Path("src"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    samples: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for _ in range(args.rounds):
        for label, tree in (("before", args.before), ("after", args.after)):
            for case, us in run(tree.resolve(), args.requests).items():
                samples[label].setdefault(case, []).append(us)
    print("| request | before µs | after µs | after/before |")
    print("|---|---:|---:|---:|")
    for case in samples["before"]:
        b = statistics.median(samples["before"][case])
        a = statistics.median(samples["after"][case])
        print(f"| `{case}` | {b:.1f} | {a:.1f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
