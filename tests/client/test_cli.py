"""`kallrec download` as a person (a terminal) and a script (a pipe) would use it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from kallrec.client import Kallrec, Recording
from kallrec.client.cli import download, parse_since
from tests.client.conftest import BigRecording, Server, call_audio
from tests.client.faultproxy import Fault, FaultProxy

app = typer.Typer()
app.command()(download)


def run(*args: str, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"CI": None, **(env or {})})


def auth(server: Server, url: str | None = None) -> list[str]:
    return ["--base-url", url or server.base_url, "--api-key", server.key]


@pytest.fixture(scope="module")
def dual_session(api: Kallrec, tmp_path_factory: pytest.TempPathFactory) -> list[Recording]:
    """One session with a mixed, an agent and a customer recording (a stereo import)."""
    wav = tmp_path_factory.mktemp("dual") / "stereo.wav"
    sf.write(wav, call_audio(90, seed=2, channels=2), 8000, subtype="PCM_16", format="WAV")
    mixed = api.recordings.create(wav, channel="dual")
    recs = [mixed, *mixed.related_recordings]
    assert sorted(r.channel or "" for r in recs) == ["agent", "customer", "mixed"]
    return [api.recordings.wait(r.id, max_wait=30) for r in recs]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_recording_to_a_file_then_skipped(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "demo.mp3"
    first = run(server.demo_recording_id, "-o", str(target), *auth(server))
    assert first.exit_code == 0, first.output
    assert first.stdout.strip().startswith(f"downloaded {server.demo_recording_id} -> {target}")
    assert first.stderr == ""
    second = run(server.demo_recording_id, "-o", str(target), *auth(server))
    assert second.exit_code == 0
    assert second.stdout.strip() == (
        f"skipped {server.demo_recording_id} -> {target} (already complete)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.mp3"]


def test_one_recording_into_a_new_directory(server: Server, tmp_path: Path) -> None:
    result = run(server.demo_recording_id, "-d", str(tmp_path / "new" / "dir"), *auth(server))
    assert result.exit_code == 0, result.output
    [only] = (tmp_path / "new" / "dir").iterdir()
    assert only.name.startswith("recording-sess_") and only.suffix == ".mp3"


def test_session_through_a_faulty_proxy(
    server: Server, dual_session: list[Recording], proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Fault("cut", after=50_000), Fault("reset", after=20_000))
    session_id = dual_session[0].session_id
    assert session_id is not None
    result = run("--session", session_id, "-d", str(tmp_path), "-j", "3", *auth(server, proxy.url))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"recording-{session_id}-agent.mp3",
        f"recording-{session_id}-customer.mp3",
        f"recording-{session_id}.mp3",
    ]
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("downloaded rec_") for line in lines)
    # Once seen as 5 under heavy load, not reproduced since: keep the evidence if it comes back.
    assert result.stderr.count("retrying rec_") == 2, result.stderr
    assert "3 downloaded" in result.stderr
    for rec in dual_session:
        suffix = "" if rec.channel == "mixed" else f"-{rec.channel}"
        path = tmp_path / f"recording-{session_id}{suffix}.mp3"
        head = proxy.requests("HEAD", rec.id)[0]
        assert head.status == 200
        assert path.stat().st_size == rec.size
    with Kallrec(server.key, base_url=server.base_url) as direct:
        etags = {
            r.id: direct.recordings.download(r.id, tmp_path / "ref" / f"{r.id}.mp3").sha256
            for r in dual_session
        }
    got = {sha(p) for p in tmp_path.glob("recording-*.mp3")}
    assert got == set(etags.values())


def test_one_line_per_failed_file_and_a_nonzero_exit(server: Server, tmp_path: Path) -> None:
    result = run(
        server.demo_recording_id, "rec_missing1", "rec_missing2", "-d", str(tmp_path),
        *auth(server),
    )  # fmt: skip
    assert result.exit_code == 1
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 2
    assert failed[0].startswith("failed rec_missing1: No such recording")
    assert "404 resource_missing" in failed[0]
    assert failed[1].startswith("failed rec_missing2: ")
    assert result.stdout.startswith(f"downloaded {server.demo_recording_id} -> ")
    assert "1 downloaded, 2 failed" in result.stderr


def test_a_bad_key_fails_each_file(server: Server, tmp_path: Path) -> None:
    result = run(
        server.demo_recording_id, "-d", str(tmp_path),
        "--base-url", server.base_url, "--api-key", "sk_test_nope",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith(f"failed {server.demo_recording_id}: ")
    assert "401" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_archive_since_and_rerun(
    server: Server, big_recording: BigRecording, dual_session: list[Recording], tmp_path: Path
) -> None:
    first = run("--all", "--since", "1h", "-d", str(tmp_path), *auth(server))
    assert first.exit_code == 0, first.output
    names = {p.name for p in tmp_path.iterdir()}
    assert f"recording-{big_recording.session_id}.mp3" in names
    assert (tmp_path / f"recording-{big_recording.session_id}.mp3").read_bytes() == (
        big_recording.body
    )
    assert not any(n.endswith((".part", ".json")) for n in names)
    again = run("--all", "--since", "1h", "-d", str(tmp_path), *auth(server))
    assert again.exit_code == 0
    assert all(line.startswith("skipped ") for line in again.stdout.splitlines())
    future = run("--all", "--since", "2099-01-01", "-d", str(tmp_path), *auth(server))
    assert future.exit_code == 0 and future.stdout == ""


def test_progress_bars(server: Server, tmp_path: Path) -> None:
    result = run(server.demo_recording_id, "-d", str(tmp_path), "--progress", *auth(server))
    assert result.exit_code == 0, result.output
    assert "total" in result.stdout and "1/1 files" in result.stdout
    assert f"downloaded {server.demo_recording_id}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name recordings"),
        (["rec_1", "--all"], "one of"),
        (["rec_1", "rec_2", "-o", "x.mp3"], "exactly one"),
        (["rec_1", "--since", "1d"], "--since/--until go with --all"),
        (["--all", "--since", "last tuesday"], "not a date"),
        (["--session", "s", "--channel", "left"], "--channel must be"),
        (["rec_1", "--base-url", "ftp://x"], "http"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args, env={"KALLREC_API_KEY": "sk_test_x"})
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_key_is_a_usage_error() -> None:
    result = run("rec_1", env={"KALLREC_API_KEY": None})
    assert result.exit_code == 2
    assert "KALLREC_API_KEY" in result.stderr


def test_parse_since() -> None:
    assert parse_since("2026-03-01") == "2026-03-01T00:00:00Z"
    assert parse_since("2026-03-01T12:00:00+02:00") == "2026-03-01T10:00:00Z"
    assert parse_since("1775000000") == "1775000000"
    assert parse_since("2d", now=2 * 86400 + 60) == "1970-01-01T00:01:00Z"


def test_in_a_pipe_the_output_is_plain(server: Server, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("CI", "KALLREC_API_KEY")},
        "KALLREC_API_KEY": server.key,
        "KALLREC_BASE_URL": server.base_url,
        "COLUMNS": "80",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "kallrec.client.cli", server.demo_recording_id, "rec_nope",
         "-d", str(tmp_path)],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "\x1b[" not in out + err
    assert out.startswith(f"downloaded {server.demo_recording_id} -> {tmp_path}/recording-")
    assert len(out.splitlines()) == 1
    assert [line.split(":")[0] for line in err.splitlines()] == [
        "failed rec_nope",
        "1 downloaded, 1 failed",
    ]
