"""Shared fixtures: settings on a temp data dir, an in-process app, keys, and audio files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from kallrec.app import KallrecApp, create_app
from kallrec.cli.admin import create_key
from kallrec.config import Settings
from kallrec.jobs.runner import run_one_job
from kallrec.runtime import Runtime
from tests.db.pg import fresh_database, wants_postgres


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    """SQLite in the data dir; a fresh PostgreSQL database with KALLREC_TEST_DATABASE=postgres."""
    with fresh_database() if wants_postgres() else _sqlite() as database_url:
        yield Settings.from_env(
            {},
            data_dir=tmp_path / "data",
            database_url=database_url,
            job_poll_seconds=0.05,
            purge_interval_seconds=0.2,
            delete_grace_seconds=0.0,
        )


@contextmanager
def _sqlite() -> Iterator[None]:
    yield None  # Settings' default: kallrec.db in the data dir


@pytest.fixture
def app(settings: Settings) -> Iterator[KallrecApp]:
    app = create_app(settings, background=False)
    yield app
    if app.runtime is not None:
        app.runtime.close()  # its pooled connections, before a PostgreSQL database is dropped


@pytest.fixture
def runtime(app: KallrecApp) -> Runtime:
    return app.start()


@pytest.fixture
async def client(app: KallrecApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kallrec.test") as c:
        yield c


@dataclass
class Caller:
    """A key and the headers that present it."""

    key: str
    org_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def make_caller(runtime: Runtime):  # type: ignore[no-untyped-def]
    def make(org: str = "acme", *, live: bool = False, scopes: tuple[str, ...] = ()) -> Caller:
        secret, _, org_row = create_key(runtime.repo, org, livemode=live, scopes=scopes)
        return Caller(secret, org_row.id)

    return make


@pytest.fixture
def caller(make_caller) -> Caller:  # type: ignore[no-untyped-def]
    return make_caller()


async def drain_jobs(rt: Runtime) -> None:
    while await run_one_job(rt):
        pass


def tone(seconds: float, freq: float, rate: int = 8000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = 8000, subtype: str = "PCM_16") -> Path:
    sf.write(path, samples, rate, subtype=subtype, format="WAV")
    return path
