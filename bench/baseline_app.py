"""The naive baseline: what most people would write to hand out a file (no auth, no lookup)."""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

FILES: dict[str, str] = json.loads(os.environ.get("BENCH_BASELINE_FILES", "{}"))
TYPES = {"meta": "application/json"}


async def serve_file(request: Request) -> FileResponse:
    name = request.path_params["name"]
    return FileResponse(FILES[name], media_type=TYPES.get(name, "audio/mpeg"))


app = Starlette(routes=[Route("/files/{name}", serve_file)])
