"""When to retry, and how long to wait: exponential backoff with full jitter, honouring Retry-After.

Retried: connection failures (refused, reset, cut mid-body, timeouts), 408, 429, 500, 502, 503,
504, and 409 ``idempotency_conflict`` (the first request with that key is still running).
Everything else is permanent: 400/401/403/404/410/412/416/422, 409 ``recording_failed``.
409 ``recording_not_ready`` is not a retry but a wait, with its own deadline (see ``_download``).

Delays: with a ``Retry-After`` the wait is that long plus up to 10 % (at most one second) of
jitter, never less; a ``Retry-After`` beyond ``max_retry_after`` is not waited for (the error is
raised at once, so a job is not silently parked for an hour). Without one: "full jitter",
``uniform(0, min(max_backoff, base_backoff * 2 ** (attempt - 1)))``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from kallrec.client._errors import APIConnectionError, APIStatusError, KallrecError

__all__ = ["RetryPolicy"]

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_CONFLICT_CODES = frozenset({"idempotency_conflict"})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how patiently, to retry transient failures.

    ``max_retries`` counts consecutive failed attempts: a download attempt that received bytes
    before failing resets the count, so a connection that keeps dropping still makes progress.
    ``sleep``/``async_sleep``/``random`` are injectable for tests.
    """

    max_retries: int = 5
    base_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    async_sleep: Callable[[float], Awaitable[None]] = field(default=anyio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def is_retryable(self, error: KallrecError) -> bool:
        if isinstance(error, APIStatusError):
            if error.status == 409:
                return error.code in RETRYABLE_CONFLICT_CODES
            return error.status in RETRYABLE_STATUSES
        return isinstance(error, APIConnectionError)

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based); None means give up."""
        if attempt > self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + min(1.0, 0.1 * retry_after) * self.random()
        ceiling = min(self.max_backoff, self.base_backoff * 2.0 ** (attempt - 1))
        return ceiling * self.random()

    def next_delay(self, attempt: int, error: KallrecError) -> float | None:
        """The wait before retrying after ``error``, or None if it must be raised."""
        if not self.is_retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        return self.delay(attempt, retry_after)
