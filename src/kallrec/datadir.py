"""The data directory holds webhook secrets, the signing key and people's calls: only its owner
may read it. Directories are made 0700 and files 0600 (spec §9)."""

from __future__ import annotations

import os
from pathlib import Path

# Set by every entry point (the CLI, the server): files the process creates are 0600 and
# directories 0700, whichever library creates them (SQLite and its -wal, LAME's output, ...).
PRIVATE_UMASK = 0o077


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (0700) if needed and close an existing one to others: a data directory
    made by an older kallrec with 0755 protects everything under it once it is 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
