"""Every test here gets a fresh, migrated database of each backend: SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kallrec.db.engine import Database
from kallrec.db.repository import Repository
from kallrec.db.schema_version import migrate
from tests.db.pg import fresh_database

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kallrec.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def empty_db(database_url: str) -> Iterator[Database]:
    """A database with no tables yet."""
    db = Database(database_url)
    try:
        yield db
    finally:
        db.close()  # before the database is dropped


@pytest.fixture
def db(empty_db: Database) -> Database:
    migrate(empty_db)
    return empty_db


@pytest.fixture
def repo(db: Database) -> Repository:
    return Repository(db)
