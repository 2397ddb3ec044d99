"""Several replicas: `kallrec serve` processes on their own ports and data directories, sharing
one PostgreSQL database (fresh per test) and one S3 bucket (moto's server mode), behind a real
nginx that balances across them with deploy/nginx/kallrec.conf.

What must hold (issue 6): imports through one replica are downloadable through any other; a
replica killed -9 mid-job loses nothing (another finishes the job once its lease runs out) and
nothing becomes ready twice; an Idempotency-Key means the same thing on every replica; a
revoked key is refused by every replica within KALLREC_CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import requests

from tests.db.pg import fresh_database, require_postgres
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    Server,
    assert_mp3_duration,
    auth,
    decode_mp3,
    download,
    free_port,
    get_recording,
    sha256,
    speech_like,
    upload,
    wait_ready,
    write_wav,
)
from tests.storage.moto_s3 import MotoProcess, MotoS3

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "kallrec.conf"
CACHE_TTL = 1.0
PREFIX = "kallrec"  # inside the bucket
# Longer than the job takes here (~1-2 s): jobs do not renew their lease while they run.
LEASE = 6.0


# -- the cluster -----------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """What the HTTP helpers need of a server: nginx in front of the replicas."""

    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def audio_url(self, recording_id: str) -> str:
        return self.url(f"/v1/recordings/{recording_id}/audio")


@dataclass
class Cluster:
    replicas: list[Server]
    database_url: str
    s3: MotoS3
    bucket: str
    nginx: Endpoint

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()

    def ready_events(self, recording_id: str) -> int:
        rows = self.sql(
            "SELECT count(*) FROM events WHERE type = 'recording.ready'"
            " AND (payload::json -> 'data' ->> 'id') = %s",
            recording_id,
        )
        return int(rows[0][0])

    def job(self, recording_id: str) -> tuple[str, int]:
        (row,) = self.sql(
            "SELECT status, attempts FROM jobs WHERE kind = 'process_recording'"
            " AND subject_id = %s",
            recording_id,
        )
        return row[0], row[1]

    def stored(self, prefix: str) -> list[str]:
        """The names of the objects under ``prefix`` in the bucket."""
        keys = self.s3.keys(self.bucket)
        return sorted(k.rsplit("/", 1)[-1] for k in keys if k.startswith(f"{PREFIX}/{prefix}"))


def _nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing (scripts/test installs it)")
        pytest.skip("nginx is not installed")
    return found


def nginx_conf(prefix: Path, port: int, upstreams: list[int], audio_dir: Path) -> str:
    """The documented site config with an upstream of every replica, inside a minimal
    nginx.conf whose paths all live in ``prefix``."""
    site = NGINX_CONF.read_text()
    upstream = "\n    server 127.0.0.1:8000;"  # the line inside `upstream kallrec { }`
    for doc in (upstream, "listen 80;", "/var/lib/kallrec/audio/"):
        assert doc in site, f"{NGINX_CONF} no longer contains {doc!r}"
    servers = "".join(f"\n    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstreams)
    site = (
        site.replace(upstream, servers)
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
        .replace("/var/lib/kallrec/audio/", f"{audio_dir.resolve()}/")
    )
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # pytest's tmp dirs are 0700
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temp}\n{site}\n}}\n"
    )


@contextlib.contextmanager
def running_nginx(prefix: Path, upstreams: list[int], audio_dir: Path) -> Iterator[Endpoint]:
    binary = _nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, port, upstreams, audio_dir))
    cmd = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, (prefix / "error.log").read_text(errors="replace")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield Endpoint(f"http://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture
def make_cluster(start_server: ServerFactory, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    require_postgres()
    _nginx_binary()
    with contextlib.ExitStack() as stack:

        def make(count: int, env: Mapping[str, str] | None = None) -> Cluster:
            database_url = stack.enter_context(fresh_database())
            s3 = MotoProcess().start()  # its own process: the test polls busily
            stack.callback(s3.stop)
            bucket = s3.create_bucket()
            shared = {
                **s3.env(f"s3://{bucket}/{PREFIX}"),
                "KALLREC_DATABASE_URL": database_url,
                "KALLREC_CACHE_TTL_SECONDS": str(CACHE_TTL),
                **(env or {}),
            }
            replicas = [
                start_server(shared, workers=1, start=False, name=f"replica-{i + 1}")
                for i in range(count)
            ]
            # Stopped before their database is dropped (the stack unwinds last-in, first-out).
            for replica in replicas:
                stack.callback(replica.stop)
            # All at once, as an orchestrator would: they race to migrate the empty database.
            threads = [threading.Thread(target=r.start) for r in replicas]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(90)
            for r in replicas:
                assert r.running, r.log_tail()
            # (The offload locations of the documented config are unused here: audio is in S3.)
            nginx = stack.enter_context(
                running_nginx(tmp_path / "nginx", [r.port for r in replicas], tmp_path)
            )
            return Cluster(replicas, database_url, s3, bucket, nginx)

        yield make


def long_call(seconds: float) -> np.ndarray:
    minute = speech_like(60.0, seed=7)
    return np.tile(minute, int(np.ceil(seconds / 60.0)))[: int(seconds * 8000)]


# -- the tests -------------------------------------------------------------------------------------


def test_replicas_share_recordings_idempotency_and_revocation(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = make_cluster(3)
    r1, r2, r3 = cluster.replicas
    # Every replica migrated (or found migrated) the one database: one version row, newest.
    from kallrec.db.migrations import head

    assert cluster.sql("SELECT version_num FROM alembic_version") == [(head(),)]
    key = r1.create_key("acme")

    # Imported through replica 1, ready seen through replica 2, downloaded through 3 and nginx.
    wav = write_wav(tmp_path / "call.wav", speech_like(20.0, seed=3), 8000)
    accepted = upload(r1, key, wav)
    assert accepted.status_code == 202, accepted.text
    rec_id = accepted.json()["id"]
    rec = wait_ready(r2, key, rec_id)
    bodies = {download(r3, key, rec_id), download(cluster.nginx, key, rec_id)}  # type: ignore[arg-type]
    assert len(bodies) == 1
    (body,) = bodies
    assert len(body) == rec["size"]
    assert_mp3_duration(decode_mp3(body).duration, 20.0)
    etags = {
        requests.head(r.audio_url(rec_id), headers=auth(key), timeout=HTTP_TIMEOUT).headers["etag"]
        for r in cluster.replicas
    }
    assert etags == {f'"{sha256(body)}"'}

    # Imports through nginx land on several replicas; every replica lists all of them.
    ids = []
    for n in range(4):
        r = upload(cluster.nginx, key, wav, data={"metadata[n]": str(n)})  # type: ignore[arg-type]
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    for n, rid in enumerate(ids):
        wait_ready(cluster.replicas[n % 3], key, rid)
    for replica in cluster.replicas:
        listed = requests.get(
            replica.url("/v1/recordings?limit=100"), headers=auth(key), timeout=HTTP_TIMEOUT
        ).json()
        assert {rec_id, *ids} <= {item["id"] for item in listed["data"]}
    for rid in (rec_id, *ids):
        assert cluster.ready_events(rid) == 1
        assert cluster.job(rid) == ("done", 1)

    # One Idempotency-Key, three replicas at once: one session is created, the rest replay it
    # or are told it is still running.
    payload = {"mode": "ai_agent", "recording": {"enabled": True, "channels": "mixed"}}
    headers = {**auth(key), "Idempotency-Key": "create-once"}
    barrier = threading.Barrier(3)
    answers: list[requests.Response] = []

    def create(replica: Server) -> None:
        barrier.wait()
        answers.append(
            requests.post(
                replica.url("/v1/sessions"), json=payload, headers=headers, timeout=HTTP_TIMEOUT
            )
        )

    threads = [threading.Thread(target=create, args=(r,)) for r in cluster.replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers).count(201) >= 1, [a.text for a in answers]
    assert {a.status_code for a in answers} <= {201, 409}
    created = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(created) == 1  # replays carry the same body
    replays = [
        requests.post(r.url("/v1/sessions"), json=payload, headers=headers, timeout=HTTP_TIMEOUT)
        for r in cluster.replicas
    ]
    assert {(a.status_code, a.json()["id"]) for a in replays} == {(201, created.pop())}
    assert all(a.headers.get("idempotent-replayed") == "true" for a in replays)
    assert cluster.sql("SELECT count(*) FROM sessions WHERE mode = 'ai_agent'") == [(1,)]

    # Revocation: every replica has the key cached; each refuses it within the cache TTL.
    for replica in cluster.replicas:
        assert get_recording(replica, key, rec_id)["id"] == rec_id
    r3.cli("keys", "revoke", key)
    revoked_at = time.monotonic()
    refused_after: dict[str, float] = {}
    while len(refused_after) < 3 and time.monotonic() - revoked_at < CACHE_TTL + 5:
        for replica in cluster.replicas:
            if replica.name in refused_after:
                continue
            r = requests.get(replica.url(f"/v1/recordings/{rec_id}"), headers=auth(key), timeout=5)
            if r.status_code == 401:
                assert r.json()["error"]["code"] == "revoked_api_key"
                refused_after[replica.name] = time.monotonic() - revoked_at
        time.sleep(0.05)
    assert len(refused_after) == 3, refused_after
    # The CLI's own process start adds nothing here: the clock starts once it has revoked.
    assert max(refused_after.values()) <= CACHE_TTL + 0.5, refused_after


def test_a_replica_killed_mid_job_loses_nothing_and_nothing_is_done_twice(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = make_cluster(2, {"KALLREC_JOB_LEASE_SECONDS": str(LEASE)})
    key = cluster.replicas[0].create_key("acme")
    seconds = 45 * 60.0  # about a second of encoding: long enough to be caught in the act
    long_wav = write_wav(tmp_path / "long.wav", long_call(seconds), 8000)
    short_wav = write_wav(tmp_path / "short.wav", speech_like(8.0, seed=5), 8000)

    accepted = upload(cluster.replicas[0], key, long_wav)
    assert accepted.status_code == 202, accepted.text
    long_id = accepted.json()["id"]

    # Whichever replica claimed the job is killed while it encodes (its work dir has out.mp3).
    victim = _wait_for_encoder(cluster.replicas, timeout=60)
    victim.kill9()
    killed_at = time.monotonic()
    survivor = next(r for r in cluster.replicas if r is not victim)
    assert cluster.sql("SELECT status FROM recordings WHERE id = %s", long_id) == [
        ("processing",)
    ], "the job finished before the kill: make the call longer"
    assert cluster.job(long_id) == ("queued", 1)

    # nginx routes around the dead replica; new work is accepted meanwhile. A POST that nginx
    # had already started sending down a kept-alive connection to the dead replica is not
    # retried by nginx (a 502): the client retries with its Idempotency-Key, as documented.
    short_ids = []
    for n in range(3):
        r = _upload_retrying(cluster.nginx, key, short_wav, f"short-{n}")  # type: ignore[arg-type]
        assert r.status_code == 202, r.text
        short_ids.append(r.json()["id"])

    rec = wait_ready(survivor, key, long_id, timeout=LEASE + 60)
    # Not before the lease of the dead replica ran out.
    assert time.monotonic() - killed_at >= LEASE * 0.5
    for rid in short_ids:
        wait_ready(survivor, key, rid)

    # Exactly once: one 'ready' event each; the long job was claimed twice, finished once.
    assert cluster.job(long_id) == ("done", 2)
    for rid in (long_id, *short_ids):
        assert cluster.ready_events(rid) == 1, rid
    assert cluster.stored("staging") == []
    # One file per ready recording (the demo calls each replica made on first start included).
    ready_ids = [row[0] for row in cluster.sql("SELECT id FROM recordings WHERE status = 'ready'")]
    assert {long_id, *short_ids} <= set(ready_ids)
    assert sorted(cluster.stored("recordings")) == sorted(f"{r}.mp3" for r in ready_ids)
    # Nothing else in the bucket: no half-written object, no staging left behind.
    assert set(cluster.stored("")) == {f"{r}.mp3" for r in ready_ids}

    body = download(cluster.nginx, key, long_id)  # type: ignore[arg-type]
    assert len(body) == rec["size"]
    assert_mp3_duration(decode_mp3(body).duration, seconds)

    # The dead replica comes back on its data directory and does nothing twice.
    victim.start()
    time.sleep(1.0)  # its job runner polls every 0.05 s
    assert json.loads(json.dumps(get_recording(victim, key, long_id)))["status"] == "ready"
    for rid in (long_id, *short_ids):
        assert cluster.ready_events(rid) == 1, rid


def _upload_retrying(
    endpoint: Any, key: str, path: Path, idempotency_key: str
) -> requests.Response:
    for attempt in range(3):
        with path.open("rb") as fh:
            r = requests.post(
                endpoint.url("/v1/recordings"),
                headers={**auth(key), "Idempotency-Key": idempotency_key},
                files={"file": (path.name, fh, "audio/wav")},
                timeout=HTTP_TIMEOUT,
            )
        if r.status_code != 502 or attempt == 2:
            return r
        time.sleep(0.5)
    raise AssertionError("unreachable")


def _wait_for_encoder(replicas: list[Server], timeout: float) -> Server:
    """The replica whose job runner is encoding right now (a work dir holding out.mp3)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for replica in replicas:
            tmp = replica.data_dir / "tmp"
            if tmp.exists() and any(tmp.rglob("out.mp3")):  # jobs.processing's work dir
                return replica
        time.sleep(0.005)
    raise AssertionError("no replica started encoding")
