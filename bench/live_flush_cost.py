"""What flushing live audio to storage costs per call, in one process, next to what receiving
that audio costs (issue 17).

    .venv/bin/python bench/live_flush_cost.py [--calls 100] [--rounds 10]   # ~1 minute

One Runtime on a fresh PostgreSQL database and moto's S3 server (its own process). Each round,
every call receives one second of audio, both speakers in 100 ms chunks: the messages parsed
(kallrec.live.messages.parse: JSON, base64) and written (SessionTracks.write), which is the
server's own work per chunk; then one flush round (live/flush.py: heartbeat, cut, spool, PUT,
index, hole punch). CPU time of this process (all threads) is measured for each part,
alternating, and reported per call per second of audio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.db.factories import new_session
from tests.db.pg import fresh_database
from tests.e2e.streaming import tone_chunk
from tests.storage.moto_s3 import MotoProcess

from kallrec.config import Settings
from kallrec.live.flush import Flusher
from kallrec.live.messages import AudioChunk, parse
from kallrec.runtime import Runtime

EPOCH_MS = 1_700_000_000_000


async def measure(calls: int, rounds: int) -> dict[str, float]:
    s3 = MotoProcess().start()
    try:
        bucket = s3.create_bucket()
        with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in s3.env(f"s3://{bucket}/kallrec").items()}
            settings = Settings.from_env(env, data_dir=Path(tmp) / "data", database_url=url)
            rt = Runtime(settings)
            try:
                org, _ = rt.repo.ensure_org("bench", 30)
                sessions = []
                for _ in range(calls):
                    session = new_session(org.id)
                    rt.repo.insert_session(session)
                    sessions.append(session.id)
                tracks = [rt.live.connect(sid)[0] for sid in sessions]
                flusher = Flusher(rt.live, rt.live_repo, rt.storage, rt.scratch / "spool", 1 << 30)
                messages = {
                    (sp, i): tone_chunk(sp, EPOCH_MS + i * 100, i)
                    for sp in ("agent", "customer")
                    for i in range(10)
                }
                receive = flush = 0.0
                for r in range(rounds):
                    started = time.process_time()
                    for t in tracks:
                        for i in range(10):
                            for sp in ("agent", "customer"):
                                chunk = parse(messages[(sp, i)])
                                assert isinstance(chunk, AudioChunk)
                                t.write(sp, chunk.timestamp_ms + r * 1000, chunk.mulaw)
                    receive += time.process_time() - started
                    started = time.process_time()
                    await flusher.round()
                    flush += time.process_time() - started
                stored = len(rt.live_repo.segments(sessions[0]))
            finally:
                rt.close()
    finally:
        s3.stop()
    per = calls * rounds
    return {
        "calls": calls,
        "rounds (seconds of audio per call)": rounds,
        "segments stored per call": stored,
        "receive_cpu_us_per_call_second": round(receive / per * 1e6, 1),
        "flush_cpu_us_per_call_second": round(flush / per * 1e6, 1),
        "flush_over_receive": round(flush / receive, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.calls, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
