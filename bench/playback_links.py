"""Playback links against /audio, side by side, and what paused players cost (issue 16).

    .venv/bin/python bench/playback_links.py             # ~3 minutes on 2 cores
    .venv/bin/python bench/playback_links.py --quick     # short cells, one round

One `kallrec serve` (2 Granian workers) on the bench data of bench/data.py (the 4-minute and the
2-hour call; made once, reused).

1. Speed. wrk drives the same scenario on `/v1/recordings/{id}/audio` (with the key) and on a
   playback link of the same recording (`/v1/playback/{link}/audio?expires=…&signature=…`, no
   key), alternating audio, link, audio, link… `--rounds` times so that drift on a shared
   machine hits both; the medians and their ratio (link / audio) are printed.
2. Paused players. 200 raw sockets each send what Chrome's `<audio>` sends first for the 2-hour
   call (`GET <link>` with `Range: bytes=0-`), read 64 KiB and then stop reading, as a paused
   player does, while the server's RSS (the whole process tree) is sampled
   (bench/slow_readers.py). After one unmeasured round (the server's first 200 connections grow
   its buffers once), link and /audio alternate, twice each.

Prints JSON and the Markdown tables BENCHMARKS.md quotes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import data as bench_data
from bench import load, servers
from bench.slow_readers import slow_readers

WORKERS = 2
CONNECTIONS = 16
# (name, title, resource, range span: None = no Range, 0 = `bytes=N-`, n = n bytes; conditional)
SCENARIOS = (
    ("range_64k", "64 KiB range, random offset, 2-h call", "large", 65536, False),
    ("seek_open", "`bytes=N-` at a random offset, 2-h call", "large", 0, False),
    ("full_1mb", "full GET, 4-min call (~1 MB)", "small", None, False),
    ("cond_304", "If-None-Match: current ETag → 304", "small", None, True),
)
PLAYERS = 200


def make_link(base: str, key: str, recording_id: str) -> str:
    req = urllib.request.Request(
        f"{base}/v1/recordings/{recording_id}/links",
        data=json.dumps({"expires_in": 7 * 86400}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        url: str = json.loads(r.read())["url"]
    return url.removeprefix(base)


def etag_of(base: str, path: str, headers: dict[str, str]) -> str:
    req = urllib.request.Request(base + path, headers=headers, method="HEAD")
    with urllib.request.urlopen(req, timeout=30) as r:
        return str(r.headers["ETag"])


def cell(
    base: str,
    path: str,
    headers: dict[str, str],
    size: int,
    span: int | None,
    seconds: float,
    workdir: Path,
    name: str,
) -> load.WrkResult:
    script = load.write_script(
        workdir / f"{name}.lua",
        method="GET",
        headers=headers,
        range_size=size if span is not None else None,
        range_span=span or 0,
    )
    cmd = load.wrk_command(base + path, script, connections=CONNECTIONS, seconds=seconds, threads=2)
    result, _ = load.run_wrk(cmd)
    if result.errors:
        raise RuntimeError(f"{name}: {result.errors} errors")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kallrec-bench"
    )
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2, 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = bench_data.prepare(args.workdir)
    target = servers.kallrec_target(args.workdir, data, WORKERS)
    auth = {"Authorization": f"Bearer {data['key']}"}
    out: dict = {"speed": {}, "paused": {}}
    with target.running():
        base = target.base_url
        links = {
            name: make_link(base, data["key"], data[name]["id"]) for name in ("small", "large")
        }
        audio = {name: f"/v1/recordings/{data[name]['id']}/audio" for name in ("small", "large")}
        for name, title, resource, span, conditional in SCENARIOS:
            runs: dict[str, list[float]] = {"audio": [], "link": []}
            p99: dict[str, list[float]] = {"audio": [], "link": []}
            for _ in range(args.rounds):
                for kind in ("audio", "link"):
                    path = audio[resource] if kind == "audio" else links[resource]
                    headers = dict(auth) if kind == "audio" else {}
                    if conditional:
                        headers["If-None-Match"] = etag_of(base, path, headers)
                    result = cell(
                        base,
                        path,
                        headers,
                        data[resource]["size"],
                        span,
                        args.seconds,
                        args.workdir,
                        f"{name}-{kind}",
                    )
                    metric = result.mb_per_s if name in ("full_1mb", "seek_open") else result.rps
                    runs[kind].append(metric)
                    p99[kind].append(result.p99_us / 1000)
            a, li = statistics.median(runs["audio"]), statistics.median(runs["link"])
            out["speed"][name] = {
                "title": title,
                "unit": "MB/s" if name in ("full_1mb", "seek_open") else "req/s",
                "audio": a,
                "link": li,
                "ratio": li / a if a else None,
                "audio_p99_ms": statistics.median(p99["audio"]),
                "link_p99_ms": statistics.median(p99["link"]),
                "runs": runs,
            }
            print(name, json.dumps(out["speed"][name]), flush=True)
        # A first round unmeasured: the server's first 200 connections grow its buffers once,
        # whichever URL they ask for; then link and audio alternate.
        order = ["warmup", "link", "audio", "link", "audio"]
        for n, kind in enumerate(order if not args.quick else order[:3]):
            path = links["large"] if kind == "link" else audio["large"]
            headers = {"Range": "bytes=0-"} if kind == "link" else {**auth, "Range": "bytes=0-"}
            report = slow_readers(
                target.roots,
                target.port,
                path,
                headers,
                healthz=base + "/healthz",
                clients=PLAYERS,
                read_bytes=64 * 1024,
                hold=5.0 if not args.quick else 2.0,
            )
            if kind != "warmup":
                out["paused"][f"{kind}-{n}"] = report.as_dict()
            print("paused", kind, json.dumps(report.as_dict()), flush=True)
    print(json.dumps(out, indent=2))
    print()
    print("| scenario | unit | /audio (key) | playback link | link ÷ audio | p99 ms audio / link |")
    print("|---|---|---:|---:|---:|---:|")
    for s in out["speed"].values():
        print(
            f"| {s['title']} | {s['unit']} | {s['audio']:,.1f} | {s['link']:,.1f} | "
            f"{s['ratio']:.2f} | {s['audio_p99_ms']:.1f} / {s['link_p99_ms']:.1f} |"
        )
    print()
    print(
        "| 200 paused players of the 2-h call | connected | read 64 KiB | RSS idle | RSS peak |"
        " growth | per player | /healthz during |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, r in out["paused"].items():
        label = "playback link" if kind.startswith("link") else "/audio with the key"
        mib = 1024 * 1024
        print(
            f"| {label} | {r['connected']} | {r['read_ok']} | {r['idle_rss'] / mib:.0f} MiB | "
            f"{r['peak_rss'] / mib:.0f} MiB | {r['growth'] / mib:.1f} MiB | "
            f"{r['growth'] / PLAYERS / 1024:.0f} KiB | {r['healthz_ms_during'] or 0:.0f} ms |"
        )


if __name__ == "__main__":
    main()
