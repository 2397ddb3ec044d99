from __future__ import annotations

import asyncio

import pytest

from kallrec.singleflight import SingleFlight


async def test_concurrent_misses_for_one_key_share_one_lookup() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    calls = 0

    async def lookup() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    results = await asyncio.gather(*(flights.do("k", lookup) for _ in range(16)))
    assert results == [42] * 16 and calls == 1
    assert await flights.do("k", lookup) == 42 and calls == 2  # finished: the next one runs
    assert len(flights) == 0


async def test_different_keys_do_not_wait_for_each_other() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    started: list[str] = []

    async def lookup(key: str) -> str:
        started.append(key)
        await asyncio.sleep(0.01)
        return key

    assert await asyncio.gather(
        flights.do("a", lambda: lookup("a")), flights.do("b", lambda: lookup("b"))
    ) == ["a", "b"]
    assert sorted(started) == ["a", "b"]


async def test_a_failed_lookup_fails_its_waiters_and_is_not_remembered() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def failing() -> int:
        await asyncio.sleep(0.01)
        raise OSError("database is locked")

    outcomes = await asyncio.gather(
        flights.do("k", failing), flights.do("k", failing), return_exceptions=True
    )
    assert all(isinstance(o, OSError) for o in outcomes)

    async def working() -> int:
        return 7

    assert await flights.do("k", working) == 7


async def test_a_caller_that_goes_away_does_not_cancel_the_others_lookup() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def lookup() -> int:
        await asyncio.sleep(0.05)
        return 1

    impatient = asyncio.ensure_future(flights.do("k", lookup))
    patient = asyncio.ensure_future(flights.do("k", lookup))
    await asyncio.sleep(0.01)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert await patient == 1
