"""One command for the whole benchmark (design §4); results go into BENCHMARKS.md.

    .venv/bin/python bench/run.py            # full run, ~9 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # c=16 only, short cells: a smoke test

On loopback, one after the other, each with the same number of workers: nginx serving the files
(sendfile), kallrec (`kallrec serve`, real auth and lookup), the naive baseline (Uvicorn +
Starlette FileResponse, no auth) and kallrec behind nginx in offload mode. Each is driven by wrk
(HEAD: ApacheBench) on the same recordings; server CPU comes from /proc (the whole process tree,
before/after), peak RSS from sampling the tree every 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import data as bench_data
from bench import encoding, env, load, report, servers
from bench.procstat import Sampler
from bench.scenarios import SCENARIOS, Scenario
from bench.slow_readers import SLOW_VARIANTS, slow_readers, variant_headers

ORDER = ("kallrec", "nginx", "baseline", "offload")  # kallrec first: it makes the metadata JSON


def busy_jiffies() -> tuple[int, int]:
    """(user + nice + system + steal, irq + softirq) of the whole machine, in clock ticks.

    Softirq time (the loopback TCP stack, mostly) belongs to no process, so it is reported on its
    own; what is left after the server and the load generator is the rest of the machine."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) for x in fh.readline().split()[1:9]
        )
    return user + nice + system + steal, irq + softirq


def request(target: servers.Target, method: str, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        return r.status, dict(r.getheaders()), body
    finally:
        conn.close()


def scenario_headers(target: servers.Target, sc: Scenario) -> dict[str, str]:
    headers = dict(target.auth)
    if sc.conditional:
        _, got, _ = request(target, "HEAD", target.paths[sc.resource], headers)
        etag = {k.lower(): v for k, v in got.items()}.get("etag")
        if etag:
            headers["If-None-Match"] = etag
    return headers


def run_cell(
    target: servers.Target,
    sc: Scenario,
    headers: dict[str, str],
    size: int,
    connections: int,
    seconds: float,
    workdir: Path,
) -> dict:
    url = target.base_url + target.paths[sc.resource]
    threads = 1 if connections == 1 else 2
    cpu_before = busy_jiffies()
    with Sampler(target.roots) as sampler:
        if sc.method == "HEAD":
            csv = workdir / "ab.csv"
            cmd = load.ab_command(url, headers, connections=connections, seconds=seconds, csv=csv)
            result, client_cpu = load.run_ab(cmd, csv)
        else:
            script = load.write_script(
                workdir / f"{target.name}-{sc.name}.lua",
                method=sc.method,
                headers=headers,
                range_size=size if sc.span is not None else None,
                range_span=sc.span or 0,
            )
            cmd = load.wrk_command(
                url, script, connections=connections, seconds=seconds, threads=threads
            )
            result, client_cpu = load.run_wrk(cmd)
    usage = sampler.usage
    tick = os.sysconf("SC_CLK_TCK")
    cpu_after = busy_jiffies()
    busy = (cpu_after[0] - cpu_before[0]) / tick
    softirq = (cpu_after[1] - cpu_before[1]) / tick
    return {
        "target": target.name,
        "scenario": sc.name,
        "c": connections,
        "requests": result.requests,
        "rps": result.rps,
        "mb_s": result.mb_per_s,
        "p50_ms": result.p50_us / 1000,
        "p99_ms": result.p99_us / 1000,
        "errors": result.errors,
        "server_cores": usage.cores,
        "server_cpu_us_per_req": usage.cpu_seconds / result.requests * 1e6
        if result.requests
        else None,
        "peak_rss": usage.peak_rss,
        "client_cores": client_cpu / usage.wall_seconds,
        "softirq_cores": softirq / usage.wall_seconds,
        "other_cores": max(0.0, busy - usage.cpu_seconds - client_cpu) / usage.wall_seconds,
        "command": shlex.join(cmd),
    }


def probe(target: servers.Target, sc: Scenario, headers: dict[str, str]) -> int:
    """One request as the scenario sends it: its status is reported with the numbers."""
    sample = dict(headers)
    if sc.sample_range:
        sample["Range"] = sc.sample_range
    status, _, _ = request(target, sc.method, target.paths[sc.resource], sample)
    return status


def bench_all(
    targets: list[servers.Target],
    scenarios: list[Scenario],
    concurrencies: list[int],
    seconds: float,
    warmup: float,
    repeats: int,
    sizes: dict[str, int],
    workdir: Path,
    results: list[dict],
) -> None:
    """All servers are up at once and take turns, cell by cell (the order reversed on every
    repeat), so that whatever else the machine does falls on all of them alike; the best of the
    repeats is kept (each repeat's numbers are in results.json)."""
    for sc in scenarios:
        headers = {t.name: scenario_headers(t, sc) for t in targets}
        status = {t.name: probe(t, sc, headers[t.name]) for t in targets}
        for t in targets:
            if warmup > 0:
                run_cell(t, sc, headers[t.name], sizes[sc.resource], 16, warmup, workdir)
        for c in concurrencies:
            length = max(seconds, 5.0) if c >= 256 and sc.long_at_high_concurrency else seconds
            runs: dict[str, list[dict]] = {t.name: [] for t in targets}
            for rep in range(repeats):
                for t in targets if rep % 2 == 0 else reversed(targets):
                    runs[t.name].append(
                        run_cell(t, sc, headers[t.name], sizes[sc.resource], c, length, workdir)
                    )
            for t in targets:
                best = dict(max(runs[t.name], key=lambda r: r[sc.metric]))
                best["status"] = status[t.name]
                best["seconds"] = length
                best["repeats"] = [
                    {k: r[k] for k in ("rps", "mb_s", "p50_ms", "p99_ms", "other_cores")}
                    for r in runs[t.name]
                ]
                results.append(best)
                print(
                    f"  {sc.name:10} c={c:<4} {t.name:9} {best['rps']:9.0f} req/s "
                    f"{best['mb_s']:7.0f} MB/s  p99 {best['p99_ms']:8.1f} ms  "
                    f"cpu {best['server_cores']:.2f}  rss {best['peak_rss'] / 2**20:4.0f} MiB  "
                    f"status {status[t.name]}  errors {best['errors']}  "
                    f"(runs: {', '.join(f'{r[sc.metric]:.0f}' for r in runs[t.name])})",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="c=16 only, 2 s cells")
    parser.add_argument("--seconds", type=float, help="length of each measured cell [2]")
    parser.add_argument("--repeats", type=int, default=2, help="runs per cell, best kept [2]")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kallrec-bench"))
    parser.add_argument("--out", type=Path, default=servers.REPO / "BENCHMARKS.md")
    parser.add_argument("--fresh", action="store_true", help="re-create the recordings")
    parser.add_argument("--targets", default=",".join(ORDER))
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--no-slow", action="store_true", help="skip the slow-readers test")
    parser.add_argument("--no-encoding", action="store_true", help="skip the MP3 encoding test")
    parser.add_argument(
        "--nginx-tcp-nopush", action="store_true", help="tcp_nopush on in both nginx configs"
    )
    args = parser.parse_args()
    if args.nginx_tcp_nopush:
        servers.TCP_NOPUSH = "on"

    started = time.monotonic()
    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    concurrencies = [16] if args.quick else [1, 16, 256]
    seconds = args.seconds or 2.0
    warmup = 0.0 if args.quick else 0.5
    repeats = 1 if args.quick else args.repeats
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    env.ensure_tools()
    env.raise_fd_limit()
    pylib = env.ensure_baseline(workdir)
    facts = env.machine_facts(pylib)
    print(f"machine: {facts}", flush=True)
    print("preparing recordings ...", flush=True)
    data = bench_data.prepare(workdir, fresh=args.fresh)
    sizes = {"small": data["small"]["size"], "large": data["large"]["size"], "meta": 0}
    meta_json = workdir / "meta.json"

    factories = {
        "kallrec": lambda: servers.kallrec_target(workdir, data, args.workers),
        "nginx": lambda: servers.nginx_target(workdir, data, args.workers, meta_json),
        "baseline": lambda: servers.baseline_target(workdir, data, args.workers, meta_json, pylib),
        "offload": lambda: servers.offload_target(workdir, data, args.workers),
    }
    wanted = [t for t in ORDER if t in args.targets.split(",")]
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios.split(",")]
    results: list[dict] = []
    slow: dict = {}
    targets = [factories[name]() for name in wanted]
    labels = {t.name: t.label for t in targets}
    loads = [os.getloadavg()[0]]
    with contextlib.ExitStack() as stack:
        for t in targets:
            print(f"starting {t.label} on :{t.port}", flush=True)
            stack.enter_context(t.running())
            if t.name == "kallrec":  # the JSON that nginx and the baseline serve as a file
                status, _, body = request(t, "GET", t.paths["meta"], dict(t.auth))
                assert status == 200, body
                meta_json.write_bytes(body)
        bench_all(
            targets,
            scenarios,
            concurrencies,
            seconds,
            warmup,
            repeats,
            sizes,
            workdir,
            results,
        )
        loads.append(os.getloadavg()[0])
        if not args.no_slow:
            # Plain GETs (Granian's pathsend), what a browser sends first (the whole file as
            # a 206, also pathsend), then a seek (a suffix kallrec streams in pieces: a paused
            # player after a seek). Memory not given back shows up in the next idle column.
            for variant in SLOW_VARIANTS:
                for t in targets:
                    time.sleep(1)
                    rep = slow_readers(
                        t.roots,
                        t.port,
                        t.paths["large"],
                        {**t.auth, **variant_headers(variant)},
                        healthz=t.base_url + t.ready_path,
                        hold=2.0 if args.quick else 5.0,
                    )
                    slow.setdefault(variant, {})[t.name] = rep.as_dict()
                    print(
                        f"  slow readers ({variant}), {t.name}: {rep.read_ok}/{rep.clients} "
                        f"stalled; RSS idle {rep.idle_rss / 2**20:.0f} MiB, peak "
                        f"{rep.peak_rss / 2**20:.0f} MiB",
                        flush=True,
                    )
    enc = None
    if not args.no_encoding:
        print("MP3 encoding: kallrec vs ffmpeg ...", flush=True)
        enc = encoding.run(workdir, runs=2 if args.quick else 5)
        print(f"  ffmpeg {enc.ffmpeg_best:.3f} s, kallrec {enc.kallrec_best:.3f} s", flush=True)

    elapsed = time.monotonic() - started
    run = {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": elapsed,
        "facts": facts,
        "workers": args.workers,
        "tcp_nopush": servers.TCP_NOPUSH,
        "seconds": seconds,
        "repeats": repeats,
        "warmup": warmup,
        "concurrencies": concurrencies,
        "labels": labels,
        "loadavg": loads,
        "data": {k: data[k] for k in ("small", "large")},
        "results": results,
        "slow": slow,
        "encoding": None if enc is None else {**enc.__dict__, "ratio": enc.ratio},
    }
    (workdir / "results.json").write_text(json.dumps(run, indent=2))
    report.write(args.out, run)
    print(f"done in {elapsed:.0f} s; wrote {args.out} (raw: {workdir / 'results.json'})")


if __name__ == "__main__":
    main()
