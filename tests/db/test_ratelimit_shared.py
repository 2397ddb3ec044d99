"""The cross-replica rate limiter: local admission, shared totals learned at each sync."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from kallrec import ratelimit_shared
from kallrec.config import Settings
from kallrec.db.engine import Database
from kallrec.db.schema import rate_limit_counters
from kallrec.errors import RateLimited
from kallrec.ratelimit import WINDOW_SECONDS, RateLimiter
from kallrec.ratelimit_shared import SharedRateLimiter, make_limiter

NEVER = 3600.0  # sync only when the test says so


@pytest.fixture
def limiters(db: Database) -> Iterator[tuple[SharedRateLimiter, SharedRateLimiter]]:
    """Two replicas' limiters (own engines) on one database, 50 requests per minute."""
    dbs = [Database(db.url, pool_size=1) for _ in range(2)]
    pair = (SharedRateLimiter(dbs[0], 50, NEVER), SharedRateLimiter(dbs[1], 50, NEVER))
    try:
        yield pair
    finally:
        for limiter in pair:
            limiter.close()
        for d in dbs:
            d.close()


def admit_all(limiter: SharedRateLimiter, count: int, key: str = "key_1") -> int:
    """How many of ``count`` requests were admitted."""
    admitted = 0
    for _ in range(count):
        try:
            limiter.admit(key)
        except RateLimited:
            continue
        admitted += 1
    return admitted


def test_after_a_sync_each_replica_counts_the_others_requests(
    limiters: tuple[SharedRateLimiter, SharedRateLimiter],
) -> None:
    a, b = limiters
    assert admit_all(a, 30) == 30
    a.flush()
    headers = b.admit("key_1")  # b has not synced yet: it knows only its own request
    assert headers["x-ratelimit-remaining"] == "49"
    b.flush()  # now it knows a's 30
    assert b.admit("key_1")["x-ratelimit-remaining"] == str(50 - 32)
    assert admit_all(b, 100) == 50 - 32
    with pytest.raises(RateLimited) as caught:
        b.admit("key_1")
    assert caught.value.headers["x-ratelimit-remaining"] == "0"  # type: ignore[index]
    assert admit_all(b, 5, key="key_2") == 5  # other keys are untouched


def test_overshoot_is_bounded_by_one_sync_interval(
    limiters: tuple[SharedRateLimiter, SharedRateLimiter],
) -> None:
    a, b = limiters
    # Both replicas admit before either syncs: each stops at the limit on its own count.
    assert admit_all(a, 100) == 50
    assert admit_all(b, 100) == 50
    a.flush()
    b.flush()
    a.flush()
    # From now on both know the shared total and refuse.
    assert admit_all(a, 10) == 0 and admit_all(b, 10) == 0


def test_counts_are_synced_by_a_timer(db: Database) -> None:
    a = SharedRateLimiter(db, 50, sync_seconds=0.05)
    b = SharedRateLimiter(db, 50, sync_seconds=0.05)
    try:
        assert admit_all(a, 10) == 10
        assert b.admit("key_1")["x-ratelimit-remaining"] == "49"  # b knows only itself
        b_admitted, remaining = 1, 49
        deadline = time.monotonic() + 5
        while remaining == 50 - b_admitted and time.monotonic() < deadline:
            time.sleep(0.05)
            remaining = int(b.admit("key_1")["x-ratelimit-remaining"])
            b_admitted += 1
        # Without any flush() call, b learned a's ten requests.
        assert remaining == 50 - 10 - b_admitted
    finally:
        a.close()
        b.close()
    with db.read() as conn:
        counts = conn.execute(select(rate_limit_counters.c.count)).scalars().all()
    assert counts == [10 + b_admitted]  # every admitted request reached the shared counter


def test_a_new_window_starts_from_zero_and_old_ones_are_pruned(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = SharedRateLimiter(db, 5, NEVER)
    try:
        assert admit_all(limiter, 10) == 5
        limiter.flush()
        later = time.time() + 2 * WINDOW_SECONDS
        monkeypatch.setattr(ratelimit_shared.time, "time", lambda: later)
        assert admit_all(limiter, 10) == 5
        limiter.flush()
    finally:
        limiter.close()
    with db.read() as conn:
        windows = conn.execute(select(rate_limit_counters.c.window_start)).scalars().all()
    assert windows == [int(later) // WINDOW_SECONDS * WINDOW_SECONDS]


def test_an_unreachable_database_fails_open_and_keeps_the_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Database("postgresql://kallrec@127.0.0.1:1/kallrec", pool_size=1)
    limiter = SharedRateLimiter(down, 3, NEVER)
    try:
        with caplog.at_level(logging.WARNING, logger="kallrec.ratelimit"):
            assert admit_all(limiter, 2) == 2
            limiter.flush()
        assert "unavailable" in caplog.text
        # Still limited by what this process counted itself.
        assert admit_all(limiter, 5) == 1
    finally:
        limiter._closed = True  # nothing to send anywhere
        down.close()


def test_make_limiter_shares_counts_only_on_postgresql(db: Database, tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path)
    limiter = make_limiter(settings, db)
    expected = SharedRateLimiter if db.dialect == "postgresql" else RateLimiter
    assert type(limiter) is expected
    if isinstance(limiter, SharedRateLimiter):
        limiter.close()
    off = make_limiter(Settings.from_env({}, data_dir=tmp_path, rate_limit_per_minute=0), db)
    assert type(off) is RateLimiter and off.admit("key_1") == {}


def test_close_waits_for_a_sync_already_under_way(db: Database, monkeypatch) -> None:
    """The server disposes of the pool right after close(): a sync still holding a connection
    would leave it to the garbage collector (seen as an unclosed psycopg connection)."""
    limiter = SharedRateLimiter(db, 50, sync_seconds=0.01)
    add, started, finished = limiter._add, [], []

    def slow_add(batch, window):  # type: ignore[no-untyped-def]
        started.append(time.monotonic())
        time.sleep(0.3)
        result = add(batch, window)
        finished.append(time.monotonic())
        return result

    monkeypatch.setattr(limiter, "_add", slow_add)
    limiter.admit("key_1")
    deadline = time.monotonic() + 5
    while not started and time.monotonic() < deadline:
        time.sleep(0.005)
    assert started, "the timer never synced"
    limiter.close()
    assert finished  # the sync finished before close returned
    assert len(finished) == 1  # close had nothing left to send, and the timer did not come back
