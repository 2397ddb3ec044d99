"""What each server is asked to do; the same requests for every server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    resource: str  # small (4 min, ~1 MB), large (2 h, ~29 MB) or meta (the recording's JSON)
    method: str = "GET"
    span: int | None = None  # a random single range per request: N bytes, or 0 for `bytes=N-`
    conditional: bool = False  # If-None-Match with the server's own current ETag
    expect: int = 200

    @property
    def metric(self) -> str:
        """What the ratios compare: bytes/s where the body dominates (and where few requests of
        a 29 MB body finish within a cell), requests/s otherwise."""
        return "mb_s" if self.name in BYTES else "rps"

    @property
    def long_at_high_concurrency(self) -> bool:
        """At c=256 a 29 MB answer takes seconds: such cells run longer."""
        return self.resource == "large" and self.span != 65536

    @property
    def sample_range(self) -> str | None:
        if self.span is None:
            return None
        return f"bytes=1000-{1000 + self.span - 1}" if self.span else "bytes=1000-"


SCENARIOS = [
    Scenario("full_1mb", "full GET, 4-min call (~1 MB)", "small"),
    Scenario("full_29mb", "full GET, 2-h call (~29 MB)", "large"),
    Scenario("range_64k", "64 KiB range, random offset, 2-h call", "large", span=65536, expect=206),
    Scenario("seek_open", "`bytes=N-` at a random offset, 2-h call", "large", span=0, expect=206),
    Scenario("head", "HEAD, 4-min call", "small", method="HEAD"),
    Scenario(
        "cond_304", "If-None-Match: current ETag → 304", "small", conditional=True, expect=304
    ),
    Scenario("metadata", "metadata `GET /v1/recordings/{id}` (nginx: same JSON, static)", "meta"),
]
FULL = ("full_1mb", "full_29mb")
BYTES = ("full_1mb", "full_29mb", "seek_open")
RANGES = ("range_64k", "seek_open")
