"""``kallrec download``: recordings to verified files, from a terminal or a script.

    kallrec download rec_… [-o FILE]                  one recording (default: its server file name)
    kallrec download rec_… rec_… -d DIR               several
    kallrec download --session sess_… -d DIR          all of a session's recordings
    kallrec download --all --since 2026-03-01 -d DIR  an archive (also --since 7d, --until …)

Register with ``app.command("download")(download)``; ``python -m kallrec.client.cli`` runs it alone.

Output: in a terminal, Rich progress bars (one per file and one overall); otherwise (a pipe, a
file, ``CI`` set, or ``--no-progress``) plain lines. One line per file on stdout —
``downloaded|resumed|skipped <id> -> <path> (…)`` — and one line per failed file on stderr,
``failed <id>: <reason>``; waits and retries are reported on stderr. Exit status: 0 when every
file is complete (downloaded, resumed or already there), 1 when any failed, 2 for a usage error,
130 when interrupted (partial ``.part`` files are kept; the same command resumes them).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kallrec.client._client import AsyncKallrec
from kallrec.client._download import DEFAULT_WAIT_TIMEOUT, DownloadProgress, DownloadResult
from kallrec.client._errors import ConfigurationError, KallrecError
from kallrec.client._models import Recording
from kallrec.client._retry import RetryPolicy

__all__ = ["download", "main", "parse_since"]

NOT_DOWNLOADABLE = ("failed", "expired")
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class UsageError(Exception):
    pass


def parse_since(value: str, *, now: float | None = None) -> str:
    """``--since``/``--until`` → the API's ``created`` bound (ISO 8601 UTC ``Z`` or Unix seconds).

    Accepts ISO 8601 dates and times (no zone means UTC), Unix seconds, and ages: ``90m``,
    ``24h``, ``7d``, ``2w`` (that long before now).
    """
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return text
    if match := _RELATIVE.fullmatch(text.lower()):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        moment = datetime.fromtimestamp((time.time() if now is None else now) - seconds, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(
            f"{value!r} is not a date: use ISO 8601 (2026-03-01, 2026-03-01T12:00:00Z), "
            "Unix seconds, or an age such as 24h or 7d."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _use_progress(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty() and sys.stderr.isatty()


class Reporter:
    """Turns download events and results into bars (terminal) or plain lines (anything else)."""

    def __init__(self, *, fancy: bool, out: Console, err: Console) -> None:
        self.fancy = fancy
        self.out = out
        self.err = err
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.received: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.overall: TaskID | None = None
        self.files = 0
        self.finished = 0

    def __enter__(self) -> Reporter:
        if self.fancy:
            self.progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.out,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def expect(self, recordings: Sequence[Recording | str]) -> None:
        self.files = len(recordings)
        for rec in recordings:
            if isinstance(rec, Recording) and rec.size is not None:
                self.totals[rec.id] = rec.size
        if self.progress is not None:
            self.overall = self.progress.add_task(self._overall_label(), total=self._total())

    def _total(self) -> int | None:
        return sum(self.totals.values()) or None

    def _overall_label(self) -> str:
        return f"total  {self.finished}/{self.files} files"

    def event(self, p: DownloadProgress) -> None:
        if p.phase in ("waiting", "retrying"):
            self.note(f"{p.phase} {p.recording_id}: {_one_line(p.message or '')}")
        if p.total is not None:
            self.totals[p.recording_id] = p.total
        self.received[p.recording_id] = p.received
        progress = self.progress
        if progress is None:
            return
        if p.phase == "downloading" or p.phase == "verifying":
            task = self.tasks.get(p.recording_id)
            if task is None:
                name = p.path.name if p.path else p.recording_id
                task = self.tasks[p.recording_id] = progress.add_task(name, total=p.total)
            progress.update(task, completed=p.received, total=p.total)
        elif p.phase in ("done", "skipped"):
            task = self.tasks.pop(p.recording_id, None)
            if task is not None:
                progress.remove_task(task)
        if self.overall is not None:
            progress.update(
                self.overall,
                completed=sum(self.received.values()),
                total=self._total(),
                description=self._overall_label(),
            )

    def note(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(escape(message), style="yellow", highlight=False)
        else:
            self.err.print(escape(message), highlight=False)

    def result(self, result: DownloadResult) -> None:
        self.finished += 1
        task = self.tasks.pop(result.recording_id, None)
        if task is not None and self.progress is not None:
            self.progress.remove_task(task)
        if result.ok:
            if result.status == "skipped":
                detail = "already complete"
            elif result.status == "resumed":
                detail = f"{result.size:,} bytes, {result.resumed_from:,} reused from .part"
            else:
                detail = f"{result.size:,} bytes"
            line = f"{result.status} {result.recording_id} -> {result.path} ({detail})"
            self.out.print(escape(line), highlight=False, soft_wrap=True)
        else:
            reason = _one_line(str(result.error)) if result.error else "unknown error"
            line = f"failed {result.recording_id}: {reason}"
            console = self.out if self.progress is not None else self.err
            console.print(escape(line), style="red" if self.fancy else None, highlight=False)
        if self.progress is not None and self.overall is not None:
            self.progress.update(self.overall, description=self._overall_label())

    def summary(self, results: Sequence[DownloadResult], skipped_unavailable: int) -> None:
        if len(results) + skipped_unavailable <= 1:
            return
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = [f"{counts[s]} {s}" for s in ("downloaded", "resumed", "skipped") if s in counts]
        if skipped_unavailable:
            parts.append(f"{skipped_unavailable} without audio")
        if "failed" in counts:
            parts.append(f"{counts['failed']} failed")
        console = self.progress.console if self.progress is not None else self.err
        console.print(", ".join(parts) or "nothing to download", highlight=False)


async def _collect(
    client: AsyncKallrec,
    sessions: Sequence[str],
    all_: bool,
    since: str | None,
    until: str | None,
    channel: str | None,
) -> list[Recording]:
    found: list[Recording] = []
    if all_:
        pager = client.recordings.list(
            channel=channel, created_gte=since, created_lt=until, limit=100
        )
        found.extend([rec async for rec in pager])
    for session_id in sessions:
        pager = client.sessions.list_recordings(session_id, channel=channel, limit=100)
        found.extend([rec async for rec in pager])
    # Oldest first: an archive fills in the order the calls happened.
    unique = {rec.id: rec for rec in found}
    return sorted(unique.values(), key=lambda r: r.id)


async def _run(
    client: AsyncKallrec,
    reporter: Reporter,
    *,
    ids: Sequence[str],
    output: Path | None,
    directory: Path | None,
    sessions: Sequence[str],
    all_: bool,
    since: str | None,
    until: str | None,
    channel: str | None,
    concurrency: int,
    wait: float,
    force: bool,
) -> int:
    results: list[DownloadResult] = []
    unavailable = 0

    def on_progress(p: DownloadProgress) -> None:
        reporter.event(p)

    if len(ids) == 1 and not sessions and not all_:
        reporter.expect(list(ids))
        try:
            result = await client.recordings.download(
                ids[0],
                output,
                directory=None if output is not None else (directory or Path.cwd()),
                wait_timeout=wait,
                skip_existing=not force,
                on_progress=on_progress,
            )
        except KallrecError as exc:
            result = DownloadResult(ids[0], "failed", error=exc)
        results.append(result)
        reporter.result(result)
    else:
        targets: list[Recording | str] = list(dict.fromkeys(ids))
        if sessions or all_:
            try:
                listed = await _collect(client, sessions, all_, since, until, channel)
            except KallrecError as exc:
                reporter.err.print(
                    escape(f"failed to list recordings: {_one_line(str(exc))}"), highlight=False
                )
                return 1
            for rec in listed:
                if rec.status in NOT_DOWNLOADABLE:
                    unavailable += 1
                    reporter.note(f"skipping {rec.id}: recording {rec.status}, it has no audio")
                else:
                    targets.append(rec)
        reporter.expect(targets)
        folder = directory or Path.cwd()

        results = await client.recordings.download_many(
            targets,
            folder,
            concurrency=concurrency,
            wait_timeout=wait,
            skip_existing=not force,
            on_progress=on_progress,
            on_result=reporter.result,
        )
    reporter.summary(results, unavailable)
    return 1 if any(not r.ok for r in results) else 0


def download(
    recording_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Recording ids (rec_…) to download.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write the (single) recording to FILE.", show_default=False
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "-d",
            "--dir",
            help="Directory for the files, named by the server (default: current directory).",
            show_default=False,
        ),
    ] = None,
    session: Annotated[
        list[str] | None,
        typer.Option(
            "--session", help="All recordings of this session (repeatable).", show_default=False
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="All of the organization's recordings (an archive).")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            help="With --all: created at/after DATE (ISO 8601, Unix seconds, or an age: 24h, 7d).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="With --all: created before DATE (same forms).", show_default=False),
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            help="With --session/--all: only mixed, agent or customer.", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="KALLREC_BASE_URL",
            help="API base URL (default: http://127.0.0.1:8000).",
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="KALLREC_API_KEY", help="Secret key (sk_…).", show_default=False
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("-j", "--concurrency", min=1, max=32, help="Files at a time.")
    ] = 4,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for recordings that are still processing."),
    ] = DEFAULT_WAIT_TIMEOUT,
    retries: Annotated[
        int,
        typer.Option(min=0, help="Retries of a failing request (429, 5xx, connection) in a row."),
    ] = 5,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds without data before a stalled connection is retried."),
    ] = 30.0,
    force: Annotated[
        bool, typer.Option("--force", help="Download again even when the file is complete.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars (default: only when the output is a terminal and CI is unset).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download recordings: resumable, verified (size and SHA-256), never a partial file."""
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    ids = list(recording_ids or [])
    sessions = list(session or [])

    def usage(message: str) -> typer.Exit:
        err.print(f"error: {escape(message)}", highlight=False)
        return typer.Exit(2)

    chosen = sum((bool(ids), bool(sessions), all_))
    if chosen == 0:
        raise usage("name recordings (rec_…), --session sess_…, or --all.")
    if chosen > 1:
        raise usage("use one of: recording ids, --session, or --all.")
    if output is not None and (len(ids) != 1 or directory is not None):
        raise usage("-o/--output takes exactly one recording id and no -d; use -d for several.")
    if (since or until) and not all_:
        raise usage("--since/--until go with --all.")
    if channel is not None and not (sessions or all_):
        raise usage("--channel goes with --session or --all.")
    if channel is not None and channel not in ("mixed", "agent", "customer"):
        raise usage("--channel must be mixed, agent or customer.")
    try:
        gte = parse_since(since) if since else None
        lt = parse_since(until) if until else None
    except UsageError as exc:
        raise usage(str(exc)) from None

    try:
        client = AsyncKallrec(
            api_key,
            base_url=base_url,
            retry=RetryPolicy(max_retries=retries),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
    except ConfigurationError as exc:
        raise usage(exc.message) from None

    async def main() -> int:
        async with client:
            with Reporter(fancy=_use_progress(progress), out=out, err=err) as reporter:
                return await _run(
                    client,
                    reporter,
                    ids=ids,
                    output=output,
                    directory=directory,
                    sessions=sessions,
                    all_=all_,
                    since=gte,
                    until=lt,
                    channel=channel,
                    concurrency=concurrency,
                    wait=wait,
                    force=force,
                )

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        err.print(
            "interrupted: unfinished files are kept as .part; run the same command to resume.",
            highlight=False,
        )
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(download)
    app()


if __name__ == "__main__":
    main()
