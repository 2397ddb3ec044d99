"""What the harness needs on the machine, installed when missing, and the facts it reports."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path

# Debian packages: the reference server, the load generators (wrk; ApacheBench for HEAD), the
# reference encoder.
TOOLS = {"nginx": "nginx", "wrk": "wrk", "ab": "apache2-utils", "ffmpeg": "ffmpeg"}
# The naive baseline's server, installed beside (not into) the project's environment.
BASELINE_PACKAGES = ["uvicorn", "uvloop", "httptools"]


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise SystemExit(f"missing {missing} and no apt-get to install them")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {' '.join(missing)} (apt-get)", flush=True)
    install = [*sudo, "apt-get", "install", "-y", "-q", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def ensure_baseline(workdir: Path) -> Path:
    """A directory with Uvicorn (+ uvloop, httptools: `uvicorn[standard]`'s fast parts) for the
    baseline; Starlette, click and h11 come from the running environment."""
    target = workdir / "pylib"
    if not (target / "uvicorn").is_dir():
        print("installing uvicorn for the baseline (pip --target)", flush=True)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target"]
        subprocess.run([*pip, str(target), *BASELINE_PACKAGES], check=True)
    return target


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _first_line(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    out = (done.stdout or done.stderr).strip().splitlines()
    return out[0] if out else "?"


def _version(dist: str, pylib: Path | None = None) -> str:
    if pylib is not None:
        for found in importlib.metadata.distributions(path=[str(pylib)]):
            if found.metadata["Name"].lower() == dist:
                return found.version
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_facts(pylib: Path | None) -> dict[str, str]:
    model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _first_line(["nginx", "-v"]).removeprefix("nginx version: "),
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "ffmpeg": " ".join(_first_line(["ffmpeg", "-version"]).split()[:3]),
        "granian": _version("granian"),
        "starlette": _version("starlette"),
        "uvicorn": _version("uvicorn", pylib),
        "lameenc": _version("lameenc"),
    }
