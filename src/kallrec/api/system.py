"""Liveness, readiness, metrics, and the API's own description."""

from __future__ import annotations

from importlib import resources

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from kallrec.api.common import json_response, runtime
from kallrec.openapi import openapi_document

# Redoc 2.5.4 (MIT, see static/redoc.LICENSE.txt) ships inside the package: /docs works offline
# and loads nothing from other hosts.
REDOC = "redoc.standalone.js"
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kallrec API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<script src="/docs/redoc.standalone.js"></script>
</body></html>"""


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    rt = runtime(request)
    checks: dict[str, str] = {}
    try:
        await anyio.to_thread.run_sync(rt.db.ping)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await rt.storage.ping()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )


async def metrics(request: Request) -> Response:
    body = await anyio.to_thread.run_sync(runtime(request).metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi_json(request: Request) -> Response:
    return json_response(openapi_document())


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS_PAGE)


async def docs_asset(request: Request) -> Response:
    path = resources.files("kallrec.static").joinpath(REDOC)
    return FileResponse(
        str(path), media_type="text/javascript", headers={"cache-control": "public, max-age=86400"}
    )
