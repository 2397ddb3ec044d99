"""Helpers for in-process API tests: import a call and wait until it is ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from kallrec.runtime import Runtime
from tests.conftest import Caller, drain_jobs, tone, write_wav


async def import_file(
    client: httpx.AsyncClient,
    caller: Caller,
    path: Path,
    *,
    data: dict[str, str] | None = None,
    filename: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    with path.open("rb") as fh:
        return await client.post(
            "/v1/recordings",
            headers={**caller.headers, **(headers or {})},
            files={"file": (filename or path.name, fh, "application/octet-stream")},
            data=data or {},
        )


async def ready_recording(
    client: httpx.AsyncClient,
    runtime: Runtime,
    caller: Caller,
    tmp_path: Path,
    seconds: float = 5.0,
) -> dict[str, Any]:
    wav = write_wav(tmp_path / "call.wav", tone(seconds, 440))
    response = await import_file(client, caller, wav)
    assert response.status_code == 202, response.text
    await drain_jobs(runtime)
    got = await client.get(f"/v1/recordings/{response.json()['id']}", headers=caller.headers)
    assert got.json()["status"] == "ready"
    return got.json()
