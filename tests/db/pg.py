"""Fresh PostgreSQL databases for tests: ``kallrec_test_<random>``, dropped afterwards.

The server comes from ``KALLREC_TEST_POSTGRES_URL`` (any database on it; default: the local
server). Tests that need it skip when it is unreachable, except in CI (``CI=true``), where a
missing server is a failure: the PostgreSQL backend must not go untested by accident.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("KALLREC_TEST_POSTGRES_URL") or DEFAULT_ADMIN_URL


def _libpq(url: str) -> str:
    """What psycopg itself takes: the URL without a SQLAlchemy driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(_libpq(admin_url()), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {make_url(admin_url())!r} is unreachable: {exc}".strip()
    return None


def require_postgres() -> None:
    reason = unreachable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


def create_database() -> str:
    """A new empty database; returns its URL (postgresql://, as an operator would write it)."""
    require_postgres()
    name = f"kallrec_test_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(admin_url()), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _libpq(make_url(admin_url()).set(database=name).render_as_string(hide_password=False))


def drop_database(url: str) -> None:
    name = make_url(url).database
    assert name and name.startswith("kallrec_test_"), name
    with psycopg.connect(_libpq(admin_url()), autocommit=True) as conn:
        # FORCE: a server process a test killed may not have closed its connections yet.
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def wants_postgres() -> bool:
    """``KALLREC_TEST_DATABASE=postgres``: the in-process API tests run on PostgreSQL."""
    return os.environ.get("KALLREC_TEST_DATABASE", "").lower() in ("postgres", "postgresql")
