"""Webhook tests run with a fast retry schedule (3 attempts, 0.2 s apart) and a 1 s timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from kallrec.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {},
        data_dir=tmp_path / "data",
        job_poll_seconds=0.05,
        purge_interval_seconds=0.2,
        delete_grace_seconds=0.0,
        webhook_retry_schedule="0,0.2,0.2",
        webhook_timeout_seconds=1.0,
    )
