"""Live calls on three replicas behind nginx (PostgreSQL + moto's S3 server): how many at once,
audio lost, and what flushing the audio to storage costs per call (issue 17).

    .venv/bin/python bench/live_replicas.py [--calls 60] [--seconds 30]   # ~3 minutes

Each call is the load generator's (kallrec.cli.loadgen): both speakers in 100 ms chunks at
real-time pace. Three runs, each on a fresh cluster, one after the other:

1. flushing every second (the default, KALLREC_LIVE_FLUSH_SECONDS=1), every call reconnecting
   every 5 s (through nginx's round robin: to another replica), then every recording downloaded
   and checked chunk by chunk: calls with errors, chunks lost;
2. and 3., side by side for the cost of flushing: the same calls without reconnects and without
   the check, flushing every second and every 10 s (ten times fewer segments; for comparison
   only: a killed replica would lose up to 10 s).

Reported: segments and bytes flushed (the replicas' /metrics), the replicas' CPU (the server
process trees, /proc) and the PostgreSQL server's CPU over each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.db.pg import fresh_database
from tests.e2e.helpers import Server
from tests.e2e.test_e2e_replicas import running_nginx
from tests.storage.moto_s3 import MotoProcess

from bench.procstat import cpu_seconds, tree
from kallrec.cli.loadgen import Options, run, summarize


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _postgres_cpu() -> float:
    pids = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout
    return cpu_seconds([int(p) for p in pids.split()])


def one_run(
    flush_seconds: float, calls: int, seconds: float, base: Path, *, reconnect: float, verify: bool
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_database())
        s3 = MotoProcess().start()
        stack.callback(s3.stop)
        bucket = s3.create_bucket()
        env = {
            **s3.env(f"s3://{bucket}/kallrec"),
            "KALLREC_DATABASE_URL": database_url,
            "KALLREC_LIVE_FLUSH_SECONDS": str(flush_seconds),
            "KALLREC_LIVE_WRITER_TIMEOUT_SECONDS": str(max(10.0, 3 * flush_seconds)),
            "KALLREC_JOB_POLL_SECONDS": "0.1",
        }
        replicas = []
        for i in range(3):
            name = f"f{flush_seconds:g}-r{reconnect:g}-replica-{i + 1}"
            replica = Server(name, base / f"{name}-data", base / f"{name}.log", env, workers=1)
            stack.callback(replica.stop)
            replicas.append(replica)
        threads = [threading.Thread(target=r.start) for r in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        nginx = stack.enter_context(
            running_nginx(
                base / f"nginx-{flush_seconds:g}-{reconnect:g}", [r.port for r in replicas], base
            )
        )
        key = replicas[0].create_key("bench", mode="test")
        roots = [r.proc.pid for r in replicas if r.proc is not None]
        cpu_before, pg_before = cpu_seconds([p for r in roots for p in tree(r)]), _postgres_cpu()
        verify_calls = -1 if verify else 0  # -1: all of them
        opts = Options(nginx.base_url, key, calls, seconds, 100, 1.0, verify_calls, 5.0, reconnect)
        started = time.perf_counter()
        summary = summarize(run(opts))
        wall = time.perf_counter() - started
        cpu = cpu_seconds([p for r in roots for p in tree(r)]) - cpu_before
        pg = _postgres_cpu() - pg_before
        scraped = [
            subprocess.run(["curl", "-s", r.url("/metrics")], capture_output=True, text=True).stdout
            for r in replicas
        ]
        segments = sum(_metric(t, "kallrec_live_segments_flushed_total") for t in scraped)
        seg_bytes = sum(_metric(t, "kallrec_live_segment_bytes_total") for t in scraped)
        failures = sum(_metric(t, "kallrec_live_flush_failures_total") for t in scraped)
        call_minutes = calls * seconds / 60
        return {
            "flush_seconds": flush_seconds,
            "reconnect_every": reconnect,
            "calls": calls,
            "seconds_per_call": seconds,
            "calls_with_errors": summary["calls_with_errors"],
            "calls_verified": summary["calls_verified"],
            "lost_chunks": summary["lost_chunks"],
            "connections": summary["connections"],
            "pong_p50_ms": summary["pong_p50_ms"],
            "pong_p99_ms": summary["pong_p99_ms"],
            "segments": int(segments),
            "segment_bytes": int(seg_bytes),
            "flush_failures": int(failures),
            "segments_per_call_minute": round(segments / call_minutes, 1),
            "replica_cpu_seconds": round(cpu, 2),
            "replica_cpu_ms_per_call_minute": round(cpu * 1000 / call_minutes, 1),
            "postgres_cpu_seconds": round(pg, 2),
            "wall_seconds": round(wall, 1),
            "first_errors": summary["first_errors"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--checked-only", action="store_true", help="only the first run (reconnects, checked)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kallrec-live-bench-") as tmp:
        base = Path(tmp)
        results = [one_run(1.0, args.calls, args.seconds, base, reconnect=5.0, verify=True)]
        if not args.checked_only:
            results += [
                one_run(1.0, args.calls, args.seconds, base, reconnect=0.0, verify=False),
                one_run(10.0, args.calls, args.seconds, base, reconnect=0.0, verify=False),
            ]
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
