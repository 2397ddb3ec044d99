"""The conversion cache's bookkeeping: quota, LRU order, pins, and the reaper (every backend)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from kallrec.db import schema as t
from kallrec.db.conversion_repository import ConversionRepository
from kallrec.db.engine import Database
from kallrec.db.repository import Repository
from tests.db.factories import import_recordings, ready

LIMIT = 1000
NOW = 1_000_000.0
PIN = 60.0


@pytest.fixture
def cache(db: Database) -> ConversionRepository:
    return ConversionRepository(db)


@pytest.fixture
def rec_id(repo: Repository) -> str:
    org, _ = repo.ensure_org("acme", 30)
    _, (rec,) = import_recordings(repo, org.id)
    ready(repo, rec)
    return rec


def keep(cache: ConversionRepository, rec_id: str, key: str, size: int, at: float) -> list[str]:
    """Reserves, builds and lets go of a conversion (its pin ends at once), as of ``at``."""
    evicted = cache.reserve(key, rec_id, size, LIMIT, f"pin-{key}", at, at + PIN)
    assert evicted is not None, f"{key} did not fit"
    assert cache.built(key, size, at)
    cache.pin(f"pin-{key}", at)
    return evicted


def reaper_keys(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(select(t.file_reaper.c.storage_key)).scalars())


def test_conversions_that_fit_evict_nothing(cache, rec_id) -> None:
    assert keep(cache, rec_id, "a", 400, NOW) == []
    assert keep(cache, rec_id, "b", 600, NOW + 1) == []
    assert cache.usage() == (2, 1000)


def test_the_least_recently_used_are_evicted_to_make_room(cache, rec_id, db) -> None:
    keep(cache, rec_id, "a", 300, NOW)
    keep(cache, rec_id, "b", 300, NOW + 1)
    keep(cache, rec_id, "c", 300, NOW + 2)
    # "a" is read again: "b" is now the least recently used.
    assert cache.use("a", "reader", NOW + 3, NOW + 3) == 300

    assert keep(cache, rec_id, "d", 300, NOW + 10) == ["b"]
    assert cache.kept_keys() == ["c", "a", "d"]
    assert cache.usage() == (3, 900)
    # Handed to the reaper in the same transaction, in case the evicting process dies.
    assert reaper_keys(db) == {"b"}


def test_as_many_are_evicted_as_the_new_size_needs(cache, rec_id) -> None:
    for i, key in enumerate("abcd"):
        keep(cache, rec_id, key, 250, NOW + i)
    assert keep(cache, rec_id, "big", 700, NOW + 10) == ["a", "b", "c"]
    assert cache.kept_keys() == ["d", "big"]


def test_a_file_being_read_is_never_evicted(cache, rec_id) -> None:
    keep(cache, rec_id, "a", 500, NOW)
    keep(cache, rec_id, "b", 500, NOW + 1)
    assert cache.use("a", "reader", NOW + 2, NOW + 2 + PIN) == 500  # "a" stays pinned

    # "a" is older than "b" after "b"'s next use, but pinned: "b" goes.
    cache.use("b", "other", NOW + 3, NOW + 3)
    assert keep(cache, rec_id, "c", 500, NOW + 4) == ["b"]
    assert cache.kept_keys() == ["a", "c"]


def test_nothing_is_evicted_when_even_every_unpinned_file_would_not_make_room(
    cache, rec_id, db
) -> None:
    keep(cache, rec_id, "a", 500, NOW)
    keep(cache, rec_id, "b", 400, NOW + 1)
    cache.use("a", "reader", NOW + 2, NOW + 2 + PIN)

    assert cache.reserve("c", rec_id, 600, LIMIT, "p", NOW + 3, NOW + 3 + PIN) is None
    assert cache.kept_keys() == ["b", "a"]  # "b" was not evicted for nothing
    assert reaper_keys(db) == set()
    # Once the reader's pin has run out, "a" can go.
    later = NOW + 3 + PIN
    assert cache.reserve("c", rec_id, 600, LIMIT, "p", later, later + PIN) == ["b", "a"]


def test_a_conversion_larger_than_the_quota_is_never_reserved(cache, rec_id) -> None:
    assert cache.reserve("huge", rec_id, LIMIT + 1, LIMIT, "p", NOW, NOW + PIN) is None
    assert cache.reserve("none", rec_id, 1, 0, "p", NOW, NOW + PIN) is None  # quota 0: keep none
    assert cache.usage() == (0, 0)


def test_a_reservation_counts_against_the_quota_while_it_is_built(cache, rec_id) -> None:
    assert cache.reserve("a", rec_id, 700, LIMIT, "builder", NOW, NOW + PIN) == []
    assert cache.use("a", "reader", NOW, NOW) is None  # not readable until built
    assert cache.reserve("b", rec_id, 400, LIMIT, "p2", NOW + 1, NOW + 1 + PIN) is None
    assert cache.built("a", 650, NOW + 2)  # smaller than reserved: the room is given back
    assert cache.usage() == (1, 650)


def test_a_key_being_built_elsewhere_is_not_reserved_twice(cache, rec_id) -> None:
    assert cache.reserve("a", rec_id, 100, LIMIT, "first", NOW, NOW + PIN) == []
    assert cache.reserve("a", rec_id, 100, LIMIT, "second", NOW + 1, NOW + 1 + PIN) is None


def test_an_abandoned_build_is_taken_over_once_its_pin_ran_out(cache, rec_id) -> None:
    assert cache.reserve("a", rec_id, 900, LIMIT, "crashed", NOW, NOW + PIN) == []
    later = NOW + PIN + 1
    # The dead builder's 900 bytes no longer count: this fits without evicting anything.
    assert cache.reserve("a", rec_id, 800, LIMIT, "second", later, later + PIN) == []
    assert cache.usage() == (1, 800)


def test_abandoning_a_reservation_frees_its_room(cache, rec_id) -> None:
    assert cache.reserve("a", rec_id, 900, LIMIT, "p", NOW, NOW + PIN) == []
    cache.abandon("a", "p")
    assert cache.usage() == (0, 0)


def test_a_key_waiting_for_the_reaper_is_not_rebuilt_until_removed(cache, rec_id, repo) -> None:
    keep(cache, rec_id, "a", 600, NOW)
    assert keep(cache, rec_id, "b", 600, NOW + 1) == ["a"]
    # The evicting process has not removed "a" yet: building it again now could have the
    # removal delete the new file.
    assert cache.reserve("a", rec_id, 100, LIMIT, "p", NOW + 2, NOW + 2 + PIN) is None
    repo.forget_removed_files(["a"])
    assert cache.reserve("a", rec_id, 100, LIMIT, "p", NOW + 3, NOW + 3 + PIN) is not None


def test_a_conversion_of_a_recording_deleted_meanwhile_is_not_kept(cache, rec_id, repo) -> None:
    org = repo.get_org_by_name("acme")
    assert cache.reserve("a", rec_id, 100, LIMIT, "p", NOW, NOW + PIN) == []
    assert repo.delete_recording(org.id, False, rec_id, grace_seconds=0) is not None
    assert not cache.built("a", 100, NOW + 1)
    assert cache.usage() == (0, 0)


def test_removed_files_leave_the_cache(cache, rec_id, repo) -> None:
    keep(cache, rec_id, "a", 100, NOW)
    keep(cache, rec_id, "b", 100, NOW)
    # What the reaper does after a recording's files were deleted.
    repo.forget_removed_files(["a"])
    assert cache.kept_keys() == ["b"]
    assert cache.use("a", "reader", NOW + 1, NOW + 1) is None


def test_a_missing_object_is_forgotten(cache, rec_id) -> None:
    keep(cache, rec_id, "a", 100, NOW)
    cache.forget("a")
    assert cache.usage() == (0, 0)


def test_finished_readers_pins_do_not_pile_up(cache, rec_id, db) -> None:
    keep(cache, rec_id, "a", 100, NOW)
    for i in range(50):  # fifty downloads, one after the other, each released when done
        at = NOW + 1 + i
        assert cache.use("a", f"reader-{i}", at, at + PIN) is not None
        cache.pin(f"reader-{i}", at)
    with db.read() as conn:
        assert len(conn.execute(select(t.conversion_pins.c.id)).all()) <= 2


def test_concurrent_reservations_from_many_processes_never_pass_the_quota(
    database_url: str, db: Database, rec_id: str
) -> None:
    """Replicas (threads with their own pools) reserving at once: the sum stays under the limit
    (PostgreSQL serializes reservations with an advisory lock, SQLite with its write lock)."""
    count = 8
    barrier = threading.Barrier(count)
    granted: list[str] = []
    errors: list[BaseException] = []

    def reserve(i: int) -> None:
        own = Database(database_url)
        try:
            barrier.wait()
            # Each keeps its pin (a build in progress): nothing can be evicted for another.
            if (
                ConversionRepository(own).reserve(
                    f"k{i}", rec_id, 300, LIMIT, f"p{i}", NOW, NOW + PIN
                )
                is not None
            ):
                granted.append(f"k{i}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(granted) == 3
    assert ConversionRepository(db).usage() == (3, 900)
