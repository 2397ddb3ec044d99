"""CPU time and memory of a process tree, read from /proc (Linux)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICK


def rss_bytes(pids: list[int]) -> int:
    """Sum of the resident set sizes (shared pages are counted once per process)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except OSError:
            continue
    return total


@dataclass
class Usage:
    cpu_seconds: float
    wall_seconds: float
    peak_rss: int

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


class Sampler:
    """Samples the trees of `roots` every `interval` seconds while in a `with` block."""

    def __init__(self, roots: list[int], interval: float = 0.05) -> None:
        self.roots = roots
        self.interval = interval
        self.peak_rss = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pids(self) -> list[int]:
        return [pid for root in self.roots for pid in tree(root)]

    def _sample(self) -> None:
        rss = rss_bytes(self.pids())
        self.samples.append((time.monotonic(), rss))
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._pids = self.pids()
        self._cpu0 = cpu_seconds(self._pids)
        self._t0 = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.usage = Usage(
            cpu_seconds=cpu_seconds(self.pids()) - self._cpu0,
            wall_seconds=time.monotonic() - self._t0,
            peak_rss=self.peak_rss,
        )
