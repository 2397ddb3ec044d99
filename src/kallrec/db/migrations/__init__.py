"""Schema migrations (Alembic), run by every process at start and by ``kallrec migrate``.

* Every start checks the recorded revision first (one query); only a database behind the newest
  migration goes further, so many workers and replicas starting together cost nothing extra.
* One process migrates at a time: PostgreSQL takes a transaction-scoped advisory lock, SQLite
  the database's write lock (BEGIN IMMEDIATE). The others wait, then find nothing left to do.
* Everything runs in that one transaction (both databases have transactional DDL): a migration
  that fails leaves the previous schema as it was.
* Databases made before migrations existed (``metadata.create_all``) hold exactly the baseline
  schema: they are stamped with the baseline revision, then upgraded like any other.

Writing a migration: change ``kallrec.db.schema``, then, against a database at the newest
revision, ``alembic revision --autogenerate -m "what changed"`` (pyproject.toml points Alembic
here) and review what it wrote. ``tests/db/test_migrations.py`` fails while the two disagree.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, inspect, text

from kallrec.db import schema
from kallrec.db.engine import Database

log = logging.getLogger("kallrec.db")

MIGRATIONS_DIR = Path(__file__).parent
# The schema ``metadata.create_all`` made before migrations existed.
BASELINE = "0001"
# Any constant both replicas agree on: "kallrec" in ASCII.
ADVISORY_LOCK_ID = 0x6B616C6C726563
# What the newest migration must produce; autogenerate and the drift test compare against it.
TARGET_METADATA: list[MetaData] = [schema.metadata, schema.ratelimit_metadata]


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer kallrec than this one."""


@dataclass(frozen=True)
class Outcome:
    before: str | None  # None: an empty database; BASELINE for an adopted one
    after: str
    adopted: bool = False  # a database from before migrations, stamped with BASELINE

    @property
    def changed(self) -> bool:
        return self.before != self.after


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn  # env.py runs on this connection
    return cfg


def head() -> str:
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database) -> Outcome:
    target = head()
    with db.read() as conn:
        current = current_revision(conn)
    if current == target:
        return Outcome(current, target)
    if current is not None and not _known(current):
        raise SchemaTooNew(
            f"The database schema is at revision {current}, which this kallrec (newest "
            f"migration {target}) does not know: run the newer kallrec that migrated it."
        )
    with db.write() as conn:
        if conn.dialect.name == "postgresql":
            # Released at commit; concurrent starters wait here, then see the new revision.
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        before = current_revision(conn)
        adopted = before is None and inspect(conn).has_table("organizations")
        if adopted:
            log.info("adopting a database created before migrations: stamping %s", BASELINE)
            command.stamp(_config(conn), BASELINE)
            before = BASELINE
        command.upgrade(_config(conn), "head")  # nothing to do if another process just did it
        after = current_revision(conn)
    assert after == target, (after, target)
    if before != after:
        log.info("database schema migrated from %s to %s", before or "nothing", after)
    return Outcome(before, after, adopted)
