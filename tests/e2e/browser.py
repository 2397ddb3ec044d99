"""Helpers for the browser tests: Debian's Chromium driven by Playwright, a page on another
origin, axe-core, and screenshots kept as test artifacts.

Playwright's own browser download cannot work here (and is never needed): Chromium comes from
Debian (scripts/test installs it) and is launched by its path. axe-core comes from npm
(scripts/test installs it under .npm-tools/). Without them the tests skip, except under CI=true,
where a missing tool is a failure: CI must not pass by testing nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("KALLREC_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
CHROMIUM = os.environ.get("KALLREC_TEST_CHROMIUM", "/usr/bin/chromium")
AXE_JS = Path(
    os.environ.get(
        "KALLREC_TEST_AXE_JS", ROOT / ".npm-tools" / "node_modules" / "axe-core" / "axe.min.js"
    )
)


def require(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI must run the browser tests)")
    pytest.skip(why)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed")
    require(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"no {CHROMIUM}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Audio plays without a sound card (a fake output), and without a gesture in the
            # page on the other origin, which is what an embedding CRM's page may do.
            args=["--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text()


def serious_accessibility_violations(page: Any) -> list[dict[str, Any]]:
    """What axe-core finds on the page as it is now, serious and critical only."""
    require(AXE_JS.exists(), f"axe-core not found at {AXE_JS} (scripts/test installs it)")
    # Evaluated through the DevTools protocol: the console's CSP (rightly) refuses inline
    # scripts, and this test must not weaken it.
    page.evaluate(_axe_source() + "\n;true")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


EMBED_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><h1>A CRM on another origin</h1>
<audio id="player" controls crossorigin="anonymous" preload="auto"></audio>
<script>
  // The link comes in this page's own query string, as a CRM would put it in its markup.
  const src = new URLSearchParams(location.search).get("src");
  document.getElementById("player").src = src;
</script></body></html>
"""


class _Embed(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(EMBED_PAGE)))
        self.end_headers()
        self.wfile.write(EMBED_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def other_origin() -> Iterator[str]:
    """A second local web server (another port, so another origin) serving a page that plays
    the playback link it is given as ``?src=``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
