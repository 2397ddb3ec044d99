"""What every `kallrec` sub-command shares: consoles, the --data-dir option, failing, a runtime."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from kallrec.config import Settings, SettingsError

if TYPE_CHECKING:
    from kallrec.runtime import Runtime

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="KALLREC_DATA_DIR",
        help="Where kallrec keeps its database and audio [default: ./kallrec-data].",
        show_default=False,
    ),
]
Mode = Annotated[str, typer.Option("--mode", help="live or test.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def settings_or_exit(data_dir: Path | None, **overrides: object) -> Settings:
    try:
        return Settings.from_env(None, data_dir=data_dir, **overrides)
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def runtime_or_exit(data_dir: Path | None) -> Runtime:
    from kallrec.runtime import Runtime  # loads the database and audio stacks: only when needed

    return Runtime(settings_or_exit(data_dir))


def parse_mode(mode: str) -> bool:
    """--mode as a livemode flag."""
    if mode not in ("live", "test"):
        raise fail(f"--mode must be 'live' or 'test', not {mode!r}.", 2)
    return mode == "live"
