"""Claiming due deliveries fairly (``WebhookRepository.claim_deliveries``), on SQLite and
PostgreSQL: caps per endpoint and per organization across senders, round-robin across
organizations. No HTTP: the URLs are never contacted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kallrec import ids, timeutil
from kallrec.db.engine import Database
from kallrec.db.repository import Repository, insert_event
from kallrec.db.schema_version import migrate
from kallrec.db.webhook_repository import ClaimedDelivery, WebhookEndpoint, WebhookRepository
from tests.db.pg import fresh_database

LEASE = 60.0
ATTEMPTS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'kallrec.db'}")
        migrate(database)
        yield database
        database.close()
        return
    with fresh_database() as url:
        database = Database(url)
        migrate(database)
        try:
            yield database
        finally:
            database.close()  # before the database is dropped


class Org:
    def __init__(self, db: Database, name: str, endpoints: int) -> None:
        self.db = db
        self.id = Repository(db).ensure_org(name, 30)[0].id
        hooks = WebhookRepository(db)
        self.endpoints: list[str] = []
        for n in range(endpoints):
            endpoint_id = ids.new_id("wh")
            hooks.insert_endpoint(
                WebhookEndpoint(
                    endpoint_id, self.id, False, f"http://127.0.0.1:9/{name}/{n}", "*", None,
                    "whsec_x", timeutil.now(), None,
                )
            )  # fmt: skip
            self.endpoints.append(endpoint_id)

    def emit(self, count: int = 1) -> None:
        """``count`` events, each queued for every endpoint of the organization."""
        with self.db.write() as conn:
            for n in range(count):
                insert_event(conn, self.id, False, "session.created", {"n": n})


def owners(claimed: list[ClaimedDelivery], *orgs: Org) -> Counter[str]:
    by_endpoint = {e: org.id for org in orgs for e in org.endpoints}
    return Counter(by_endpoint[c.endpoint_id] for c in claimed)


def test_an_organization_holds_at_most_its_share_of_leases(db: Database) -> None:
    hooks = WebhookRepository(db)
    slow, other = Org(db, "slow", 10), Org(db, "other", 1)
    slow.emit(3)  # 30 deliveries, due before the other organization's
    other.emit()
    first = hooks.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=8)
    assert owners(first, slow, other) == {slow.id: 8, other.id: 1}
    # Its eight leases are held (by this sender or another): nothing more for it until they end.
    slow.emit()
    assert hooks.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=8) == []
    other.emit()
    again = hooks.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=8)
    assert owners(again, slow, other) == {other.id: 1}


def test_the_caps_count_leases_taken_by_other_senders(db: Database) -> None:
    slow = Org(db, "slow", 3)
    slow.emit(4)
    one, other = WebhookRepository(db), WebhookRepository(Database(db.url, pool_size=1))
    try:
        assert len(one.claim_deliveries(5, LEASE, ATTEMPTS, 4, per_org=8)) == 5
        assert len(other.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=8)) == 3
        assert other.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=8) == []
    finally:
        other.db.close()


def test_an_expired_lease_frees_its_place(db: Database) -> None:
    hooks = WebhookRepository(db)
    slow = Org(db, "slow", 2)
    slow.emit(2)
    assert len(hooks.claim_deliveries(64, 0.0, ATTEMPTS, 4, per_org=2)) == 2  # expire at once
    assert len(hooks.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=2)) == 2


def test_claims_go_round_robin_across_organizations(db: Database) -> None:
    hooks = WebhookRepository(db)
    busy, quiet, late = Org(db, "busy", 2), Org(db, "quiet", 1), Org(db, "late", 1)
    busy.emit(10)  # 20 deliveries older than anyone else's
    quiet.emit()
    late.emit()
    # Fewer free slots than due deliveries, no per-organization cap: still one each first.
    claimed = hooks.claim_deliveries(3, LEASE, ATTEMPTS, 100)
    assert owners(claimed, busy, quiet, late) == {busy.id: 1, quiet.id: 1, late.id: 1}
    # And the oldest of each organization first.
    assert claimed[0].endpoint_id in busy.endpoints
    rest = hooks.claim_deliveries(100, LEASE, ATTEMPTS, 100)
    assert owners(rest, busy, quiet, late) == {busy.id: 19}


def test_the_endpoint_cap_still_applies_inside_an_organization(db: Database) -> None:
    hooks = WebhookRepository(db)
    org = Org(db, "acme", 2)
    org.emit(6)
    claimed = hooks.claim_deliveries(64, LEASE, ATTEMPTS, 4, per_org=100)
    assert Counter(c.endpoint_id for c in claimed) == {e: 4 for e in org.endpoints}
