"""Webhook tests run with a fast retry schedule (3 attempts, 0.2 s apart) and a 1 s timeout,
and may reach receivers on loopback (KALLREC_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8), as an
operator with a receiver on the same host would allow.

Host names never reach the system resolver here (no DNS traffic from tests): ``dns`` is a table
of names, and every other name does not resolve.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kallrec.config import Settings
from kallrec.webhooks import transport
from tests.webhooks.helpers import FakeDNS

LOOPBACK = "127.0.0.0/8"


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
        webhook_allowed_networks=LOOPBACK,
    )


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS({"localhost": ["127.0.0.1"]})
    monkeypatch.setattr(transport, "system_resolve", fake)
    return fake
