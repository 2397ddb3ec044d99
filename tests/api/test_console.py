"""GET /console and its assets: shipped in the package, strict CSP, no CORS."""

from __future__ import annotations

import re

import httpx


async def test_the_page_links_its_versioned_assets_under_a_strict_policy(client) -> None:
    page = await client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in page.headers
    versions = set(re.findall(r"/console/assets/console\.(?:js|css)\?v=([0-9a-f]{12})", page.text))
    assert len(versions) == 1  # both assets, one digest of their content
    assert "{{" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it


async def test_the_assets_are_served_with_their_types_and_cached(client) -> None:
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        asset = await client.get(f"/console/assets/{name}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith(kind)
        assert "immutable" in asset.headers["cache-control"]
        assert len(asset.content) > 1000


async def test_an_unknown_asset_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    for name in ("secret.key", "..%2f..%2fpyproject.toml", "index.html"):
        response = await client.get(f"/console/assets/{name}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "route_not_found"
