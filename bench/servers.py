"""The servers under test, each started on its own loopback port and stopped by its own pid."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEPLOY_CONF = REPO / "deploy" / "nginx" / "kallrec.conf"
KALLREC = Path(sys.executable).with_name("kallrec")
# Per-request limit so high it never triggers, but on: its cost is part of what is measured.
RATE_LIMIT = "1000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALLREC_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"NO_COLOR": "1", **(extra or {})})
    return env


@dataclass
class Proc:
    """One process group we started; stopped with SIGTERM/SIGQUIT, then SIGKILL of its group."""

    name: str
    cmd: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=clean_env)
    stop_signal: int = signal.SIGTERM
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        fh = self.log.open("ab")
        fh.write(f"\n=== {shlex.join(self.cmd)}\n".encode())
        fh.flush()
        self.popen = subprocess.Popen(
            self.cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        fh.close()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self.popen = None


# -- nginx --------------------------------------------------------------------------------------


def nginx_main_conf(prefix: Path, workers: int, http_body: str) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, workers would otherwise run as `nobody` and might not read the data directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes {workers};\nworker_rlimit_nofile 65536;\n"
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        f"events {{ worker_connections 8192; }}\n"
        f"http {{\n    access_log off;\n{temp}\n    default_type application/octet-stream;\n"
        f"{http_body}\n}}\n"
    )


# `tcp_nopush on` (TCP_CORK) stalls responses of ~64-128 KB for 40 ms on loopback (measured:
# 64 KiB ranges 476 req/s with it, 27,435 without), so the reference runs without it, like the
# documented offload config. `--nginx-tcp-nopush` puts it back.
TCP_NOPUSH = "off"


def static_site(port: int, audio_dir: Path, meta_json: Path) -> str:
    """nginx as the practical limit: static files, sendfile, nothing else in the way."""
    return f"""
    sendfile on;
    tcp_nopush {TCP_NOPUSH};
    keepalive_requests 1000000;
    types {{ audio/mpeg mp3; application/json json; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /static/audio/ {{ alias {audio_dir}/; }}
        location = /static/meta.json {{ alias {meta_json}; }}
    }}
"""


def offload_site(port: int, kallrec_port: int, audio_dir: Path) -> str:
    """deploy/nginx/kallrec.conf, as documented, with this run's ports and data directory."""
    site = DEPLOY_CONF.read_text()
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{kallrec_port};",
        "listen 80;": f"listen 127.0.0.1:{port} backlog=4096;",
        "keepalive_requests 100000;": "keepalive_requests 1000000;",
        "tcp_nopush off;": f"tcp_nopush {TCP_NOPUSH};",
        "/var/lib/kallrec/audio/": f"{audio_dir}/",
    }
    for doc, value in replacements.items():
        if doc not in site:
            raise RuntimeError(f"{DEPLOY_CONF} no longer contains {doc!r}")
        site = site.replace(doc, value)
    return site


def nginx_proc(name: str, prefix: Path, workers: int, http_body: str) -> Proc:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_main_conf(prefix, workers, http_body))
    cmd = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed for {conf}:\n{check.stderr}")
    return Proc(name, cmd, prefix / "stdout.log", stop_signal=signal.SIGQUIT)


# -- the targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    """A deployment under test: its processes, its base URL and where each resource lives."""

    name: str
    label: str
    procs: list[Proc]
    port: int
    paths: dict[str, str]  # small, large, meta -> URL path
    auth: dict[str, str]
    ready_path: str = "/"
    kallrec_workers: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def roots(self) -> list[int]:
        return [p.pid for p in self.procs]

    @contextlib.contextmanager
    def running(self) -> Iterator[Target]:
        try:
            for proc in self.procs:
                proc.start()
            for proc in self.procs:
                assert proc.popen is not None
                port = int(proc.env.get("BENCH_PORT", self.port))
                wait_port(port, proc.popen, proc.log)
            self._wait_ready()
            yield self
        finally:
            for proc in reversed(self.procs):
                proc.stop()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=2):
                    pass
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # Granian starts its workers one after the other; wait until all of them are up.
        for proc in self.procs:
            if proc.name.startswith("kallrec"):
                while True:
                    text = proc.log.read_text(errors="replace").rsplit("=== ", 1)[-1]
                    if all(
                        f"Started worker-{i}" in text for i in range(1, self.kallrec_workers + 1)
                    ):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{proc.name}: workers did not start:\n{tail(proc.log)}")
                    time.sleep(0.05)


def kallrec_proc(
    name: str, workdir: Path, data_dir: Path, port: int, workers: int, offload: bool
) -> Proc:
    env = clean_env({"KALLREC_RATE_LIMIT_PER_MINUTE": RATE_LIMIT, "BENCH_PORT": str(port)})
    if offload:
        env["KALLREC_OFFLOAD"] = "nginx"
    cmd = [str(KALLREC), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    cmd += ["--workers", str(workers)]
    return Proc(name, cmd, workdir / f"{name}.log", env=env)


def kallrec_target(workdir: Path, data: dict, workers: int) -> Target:
    port = free_port()
    proc = kallrec_proc("kallrec", workdir, Path(data["data_dir"]), port, workers, offload=False)
    return Target(
        "kallrec",
        f"kallrec ({workers} Granian workers)",
        [proc],
        port,
        _kallrec_paths(data),
        {"Authorization": f"Bearer {data['key']}"},
        ready_path="/healthz",
        kallrec_workers=workers,
    )


def offload_target(workdir: Path, data: dict, workers: int) -> Target:
    port, kport = free_port(), free_port()
    kallrec = kallrec_proc(
        "kallrec-offload", workdir, Path(data["data_dir"]), kport, workers, offload=True
    )
    site = offload_site(port, kport, Path(data["data_dir"]) / "audio")
    nginx = nginx_proc("nginx-offload", workdir / "nginx-offload", workers, site)
    return Target(
        "offload",
        f"nginx ({workers} workers) + kallrec --offload nginx ({workers} workers)",
        [kallrec, nginx],
        port,
        _kallrec_paths(data),
        {"Authorization": f"Bearer {data['key']}"},
        ready_path="/healthz",
        kallrec_workers=workers,
    )


def _kallrec_paths(data: dict) -> dict[str, str]:
    return {
        "small": f"/v1/recordings/{data['small']['id']}/audio",
        "large": f"/v1/recordings/{data['large']['id']}/audio",
        "meta": f"/v1/recordings/{data['small']['id']}",
    }


def nginx_target(workdir: Path, data: dict, workers: int, meta_json: Path) -> Target:
    port = free_port()
    audio = Path(data["data_dir"]) / "audio"
    site = static_site(port, audio, meta_json)
    proc = nginx_proc("nginx", workdir / "nginx-static", workers, site)
    return Target(
        "nginx",
        f"nginx static, sendfile ({workers} workers)",
        [proc],
        port,
        {
            "small": f"/static/audio/{data['small']['key']}",
            "large": f"/static/audio/{data['large']['key']}",
            "meta": "/static/meta.json",
        },
        {},
        ready_path="/static/meta.json",
    )


def baseline_target(
    workdir: Path, data: dict, workers: int, meta_json: Path, pylib: Path
) -> Target:
    port = free_port()
    audio = Path(data["data_dir"]) / "audio"
    files = {
        "small": str(audio / data["small"]["key"]),
        "large": str(audio / data["large"]["key"]),
        "meta": str(meta_json),
    }
    env = clean_env(
        {
            "PYTHONPATH": os.pathsep.join([str(pylib), str(REPO)]),
            "BENCH_BASELINE_FILES": json.dumps(files),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--backlog",
        "4096",
    ]
    return Target(
        "baseline",
        f"Uvicorn + Starlette FileResponse, no auth ({workers} workers)",
        [Proc("baseline", cmd, workdir / "baseline.log", env=env)],
        port,
        {"small": "/files/small", "large": "/files/large", "meta": "/files/meta"},
        {},
        ready_path="/files/meta",
    )
