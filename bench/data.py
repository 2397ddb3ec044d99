"""The recordings under test: speech-like 8 kHz audio made with NumPy, imported with the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import wave
from pathlib import Path

import numpy as np

from bench.servers import KALLREC, clean_env

RATE = 8000
SMALL_SECONDS = 4 * 60  # a 4-minute call: ~1 MB of MP3 at 32 kbps
LARGE_SECONDS = 2 * 60 * 60  # a 2-hour call: ~29 MB
ORG = "bench"


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Int16 mono: voiced syllables (a few harmonics of a gliding pitch), fricative noise and
    pauses, random lengths, so that no two seconds are alike."""
    rng = np.random.default_rng(seed)
    total = int(seconds * RATE)
    out = np.empty(total, dtype=np.int16)
    pos = 0
    while pos < total:
        n = min(total - pos, int(rng.uniform(0.08, 0.6) * RATE))
        t = np.arange(n) / RATE
        kind = rng.choice(3, p=[0.55, 0.2, 0.25])
        if kind == 0:
            f0 = rng.uniform(90, 260) * (1 + rng.uniform(-0.2, 0.2) * t / max(t[-1], 1e-3))
            phase = 2 * np.pi * np.cumsum(f0) / RATE
            seg = sum(np.sin(h * phase) / h for h in range(1, 6))
        elif kind == 1:
            seg = rng.standard_normal(n) * 0.5
        else:
            seg = rng.standard_normal(n) * 0.01
        envelope = np.abs(np.sin(np.pi * np.arange(n) / max(n - 1, 1))) ** 0.5
        level = rng.uniform(0.2, 0.6) * 0.8 * 32767
        out[pos : pos + n] = np.clip(seg * envelope * level, -32767, 32767).astype(np.int16)
        pos += n
    return out


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def cli(data_dir: Path, *args: str) -> str:
    cmd = [str(KALLREC), *args, "--data-dir", str(data_dir)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=clean_env(), timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{done.stdout}\n{done.stderr}")
    return [line.strip() for line in done.stdout.splitlines() if line.strip()][-1]


def prepare(workdir: Path, fresh: bool = False) -> dict:
    """A data directory with a key and the two recordings; reused when it is already complete."""
    manifest = workdir / "data.json"
    if manifest.exists() and not fresh:
        data = json.loads(manifest.read_text())
        audio = Path(data["data_dir"]) / "audio"
        if all((audio / data[k]["key"]).is_file() for k in ("small", "large")):
            return data
    data_dir = workdir / "data"
    if data_dir.exists():
        subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    data_dir.mkdir(parents=True)
    key = cli(data_dir, "keys", "create", "--org", ORG, "--mode", "test")
    data: dict = {"data_dir": str(data_dir), "key": key}
    for name, seconds, seed in (("small", SMALL_SECONDS, 1), ("large", LARGE_SECONDS, 2)):
        wav = write_wav(workdir / f"{name}.wav", speech_like(seconds, seed))
        rec_id = cli(data_dir, "import", str(wav), "--org", ORG, "--mode", "test")
        os.unlink(wav)
        (stored,) = (data_dir / "audio").glob(f"recordings/*/{rec_id}.mp3")
        data[name] = {
            "id": rec_id,
            "key": stored.relative_to(data_dir / "audio").as_posix(),
            "size": stored.stat().st_size,
            "seconds": seconds,
        }
    manifest.write_text(json.dumps(data, indent=2))
    return data
