"""The OpenAPI 3.1 description of the API (being written)."""

from __future__ import annotations

from typing import Any


def openapi_document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "kallrec", "version": "1"}, "paths": {}}
