"""Scratch files: what dead processes left is swept, live processes' scratch is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kallrec.tempfiles import ABANDONED_AFTER_SECONDS, new_temp_path, scratch_dir, sweep


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_dead_processes_scratch_and_old_strays(tmp_path: Path) -> None:
    dead = scratch_dir(tmp_path, _dead_pid())
    work = new_temp_path(dead / "tmpwork", ".pcm")  # fresh, but its owner is gone
    mine = new_temp_path(scratch_dir(tmp_path, os.getpid()), ".upload")
    stray = new_temp_path(tmp_path, ".pcm")
    past = time.time() - ABANDONED_AFTER_SECONDS - 10
    os.utime(stray, (past, past))
    os.utime(mine.parent, (past, past))  # old directory, live owner: kept
    assert sweep(tmp_path, time.time()) == 2
    assert not work.exists() and not stray.exists()
    assert mine.exists()


def test_sweep_keeps_fresh_strays(tmp_path: Path) -> None:
    fresh = new_temp_path(tmp_path, ".upload")
    assert sweep(tmp_path, time.time()) == 0
    assert fresh.exists()


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    assert sweep(tmp_path / "nope", time.time()) == 0


def test_sweep_treats_an_unreaped_process_as_dead(tmp_path: Path) -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not waited for yet
    time.sleep(0.5)
    left = new_temp_path(scratch_dir(tmp_path, zombie.pid), ".pcm")
    try:
        assert sweep(tmp_path, time.time()) == 1
        assert not left.exists()
    finally:
        zombie.wait()
