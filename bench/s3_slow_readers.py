"""1,000 stalled readers of the 2-hour call when kallrec serves it from S3 (moto on loopback).

    .venv/bin/python bench/s3_slow_readers.py        # ~1 minute; needs the test extras (moto)

On S3 nothing is zero-copy: every body goes through Python, read from the bucket 1 MiB at a
time, so this is where what a stalled download holds matters most. It copies bench/run.py's
data directory, moves its audio into a fresh bucket with `kallrec storage migrate`, serves it
with `kallrec serve --workers 2` and runs the same slow-readers test (bench/slow_readers.py)
for a plain GET and for a seek.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.storage.moto_s3 import MotoProcess

from bench import data as bench_data
from bench import servers
from bench.slow_readers import SEEK, slow_readers, variant_headers

MiB = 2**20


def main() -> None:
    workdir = Path("/tmp/kallrec-bench")
    data = bench_data.prepare(workdir)
    data_dir = workdir / "s3-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(data["data_dir"], data_dir)
    moto = MotoProcess().start()
    try:
        bucket = moto.create_bucket()
        url = f"s3://{bucket}/kallrec"
        s3_env = {k: v for k, v in moto.env(url).items() if k != "KALLREC_STORAGE_URL"}
        subprocess.run(
            [str(servers.KALLREC), "storage", "migrate", "--to", url, "--data-dir", str(data_dir)],
            env=servers.clean_env(s3_env),
            check=True,
            capture_output=True,
        )
        port = servers.free_port()
        env = servers.clean_env({**moto.env(url), "KALLREC_RATE_LIMIT_PER_MINUTE": "1000000000"})
        cmd = [str(servers.KALLREC), "serve", "--data-dir", str(data_dir), "--port", str(port)]
        proc = servers.Proc("kallrec-s3", [*cmd, "--workers", "2"], workdir / "s3.log", env=env)
        proc.start()
        try:
            assert proc.popen is not None
            servers.wait_port(port, proc.popen, workdir / "s3.log")
            path = f"/v1/recordings/{data['large']['id']}/audio"
            auth = {"Authorization": f"Bearer {data['key']}"}
            for variant in ("GET", SEEK):
                rep = slow_readers(
                    [proc.pid],
                    port,
                    path,
                    {**auth, **variant_headers(variant)},
                    healthz=f"http://127.0.0.1:{port}/healthz",
                    hold=3.0,
                )
                per = rep.growth / 1024 / max(1, rep.read_ok)
                print(
                    f"S3, {variant}: {rep.read_ok}/{rep.clients} stalled; "
                    f"RSS idle {rep.idle_rss / MiB:.0f} MiB, peak {rep.peak_rss / MiB:.0f} MiB, "
                    f"{per:.0f} KiB per stalled client",
                    flush=True,
                )
        finally:
            proc.stop()
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
