"""Per-key request limits: a fixed one-minute window per key, per process.

Checked once when a request is admitted; the bytes of an admitted download are never cut off.
"""

from __future__ import annotations

import time

from kallrec.errors import RateLimited

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}

    def admit(self, key_id: str) -> dict[str, str]:
        """Counts the request and returns the X-RateLimit-* headers; raises when over the limit."""
        if self.per_minute == 0:
            return {}
        now = time.time()
        window = int(now) // WINDOW_SECONDS
        start, count = self._windows.get(key_id, (window, 0))
        if start != window:
            if len(self._windows) > 100_000:
                self._windows.clear()
            start, count = window, 0
        reset = (window + 1) * WINDOW_SECONDS
        headers = {
            "x-ratelimit-limit": str(self.per_minute),
            "x-ratelimit-reset": str(reset),
        }
        if count >= self.per_minute:
            headers["x-ratelimit-remaining"] = "0"
            raise RateLimited(
                f"Too many requests: this key may make {self.per_minute} requests per minute.",
                retry_after=reset - now,
                headers=headers,
            )
        self._windows[key_id] = (start, count + 1)
        headers["x-ratelimit-remaining"] = str(self.per_minute - count - 1)
        return headers
