"""Migrations: a fresh database reaches the schema the code declares, an old one is adopted,
and many processes starting at once migrate it exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text, update
from typer.testing import CliRunner

from kallrec import timeutil
from kallrec.cli import app
from kallrec.db import schema
from kallrec.db.engine import Database
from kallrec.db.migrations import (
    BASELINE,
    TARGET_METADATA,
    Outcome,
    SchemaTooNew,
    head,
    upgrade,
)
from kallrec.db.models import Organization
from kallrec.db.repository import Repository
from kallrec.db.schema_version import HEAD, is_current, migrate


def schema_drift(db: Database) -> list[object]:
    """What autogenerate would write to bring the database to the declared schema."""
    with db.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, TARGET_METADATA))


def test_a_fresh_database_migrates_to_exactly_the_declared_schema(empty_db: Database) -> None:
    outcome = upgrade(empty_db)
    assert outcome == Outcome(None, head())
    # Fails when kallrec.db.schema changed without a migration (see kallrec.db.migrations).
    assert schema_drift(empty_db) == []


def test_migrating_again_changes_nothing(db: Database) -> None:
    assert upgrade(db) == Outcome(head(), head())
    assert not upgrade(db).changed


def test_the_head_known_without_alembic_is_alembics_head(empty_db: Database) -> None:
    assert head() == HEAD  # update schema_version.HEAD with every new migration
    assert not is_current(empty_db)  # no version table yet
    migrate(empty_db)
    assert is_current(empty_db)


# Columns of schema.py that migrations after 0001 add (0003: node affinity; 0005: sessions as
# Kallglot clients create and end them).
ADDED_AFTER_BASELINE = (
    ("sessions", "stream_node"),
    ("jobs", "node"),
    ("organizations", "record_by_default"),
    *(
        ("sessions", column)
        for column in (
            "phone_number",
            "direction",
            "routing",
            "carrier_ids",
            "ai_agent",
            "end_reason",
            "recording_id",
        )
    ),
    ("recordings", "source"),
)
# Tables of schema.py that migrations after 0001 create (0004: the conversion cache; 0006:
# playback links and peaks; 0008: live calls on any replica).
TABLES_ADDED_AFTER_BASELINE = (
    "conversion_cache",
    "conversion_pins",
    "playback_links",
    "recording_peaks",
    "live_segments",
    "live_objects",
    "live_writers",
    "first_start_claims",
)


def test_a_database_created_before_migrations_is_adopted_with_its_data(
    empty_db: Database,
) -> None:
    # What Database.migrate did before Alembic: create_all (of the schema as it was then, the
    # baseline: without the columns later migrations add) plus a schema_version row.
    schema.metadata.create_all(empty_db.engine)
    with empty_db.write() as conn:
        for table, column in ADDED_AFTER_BASELINE:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in TABLES_ADDED_AFTER_BASELINE:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.execute(insert(schema.schema_version).values(version=1))
        conn.execute(
            insert(schema.organizations).values(
                id="org_acme", name="acme", retention_days=30, created_at=1.0
            )
        )

    outcome = upgrade(empty_db)

    assert outcome.adopted and outcome.before == BASELINE and outcome.after == head()
    org = Repository(empty_db).get_org_by_name("acme")
    # Organizations older than the setting go on recording every session, as they did.
    assert org == Organization("org_acme", "acme", 30, 1.0, record_by_default=True)
    assert schema_drift(empty_db) == []


def test_concurrent_starts_migrate_once(database_url: str) -> None:
    """Replicas (here: threads with their own pools) all calling migrate() on an empty database."""
    count = 6
    barrier = threading.Barrier(count)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def start() -> None:
        db = Database(database_url)
        try:
            barrier.wait()
            outcomes.append(upgrade(db))
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(outcomes) == count
    assert sum(o.changed for o in outcomes) == 1, outcomes
    assert {o.after for o in outcomes} == {head()}


def test_a_schema_newer_than_the_code_is_refused(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew, match="9999"):
        migrate(db)


def test_rate_limit_counters_are_unlogged_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        assert inspect(db.engine).has_table("rate_limit_counters")
        return
    with db.read() as conn:
        persistence = conn.execute(
            text("SELECT relpersistence FROM pg_class WHERE relname = 'rate_limit_counters'")
        ).scalar_one()
    assert persistence == "u"


def test_kallrec_migrate_command(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"KALLREC_DATABASE_URL": database_url, "NO_COLOR": "1", "COLUMNS": "200"}
    data_dir = str(tmp_path / "data")
    first = runner.invoke(app, ["migrate", "--data-dir", data_dir], env=env)
    assert first.exit_code == 0, first.output
    assert f"from an empty database to {head()}" in first.stdout
    again = runner.invoke(app, ["migrate", "--data-dir", data_dir], env=env)
    assert again.exit_code == 0, again.output
    assert f"up to date (revision {head()})" in again.stdout


def test_kallrec_migrate_hides_the_password(tmp_path: Path) -> None:
    url = "postgresql://kallrec:s3cret-pw@127.0.0.1:1/kallrec"  # nothing listens on port 1
    result = CliRunner().invoke(
        app,
        ["migrate", "--data-dir", str(tmp_path)],
        env={"KALLREC_DATABASE_URL": url, "NO_COLOR": "1"},
    )
    assert result.exit_code == 1
    assert "could not migrate" in result.stderr
    assert "s3cret-pw" not in result.output


def test_floats_keep_full_precision(db: Database) -> None:
    """Timestamps are Unix seconds as floats: double precision on PostgreSQL, not real."""
    when = timeutil.now() + 0.123456
    with db.write() as conn:
        conn.execute(
            insert(schema.organizations).values(
                id="org_x", name="x", retention_days=1, created_at=when
            )
        )
        conn.execute(
            update(schema.organizations).values(created_at=schema.organizations.c.created_at)
        )
    with db.read() as conn:
        stored = conn.execute(select(schema.organizations.c.created_at)).scalar_one()
    assert stored == when and type(stored) is float


def test_0005_keeps_existing_organizations_recording_and_points_sessions_at_their_mix(
    empty_db: Database,
) -> None:
    from alembic import command

    from kallrec.db.migrations import _config

    with empty_db.write() as conn:
        command.upgrade(_config(conn), "0004")
    rows = {
        "organizations": {"id": "org_a", "name": "a", "retention_days": 30, "created_at": 1.0},
        "sessions": {
            "id": "sess_1",
            "org_id": "org_a",
            "livemode": False,
            "mode": "ai_agent",
            "status": "ended",
            "recording_enabled": True,
            "recording_channels": "dual",
            "created_at": 1.0,
        },
    }
    recordings = [("rec_2", "mixed", None), ("rec_3", "agent", None), ("rec_1", "mixed", 5.0)]
    with empty_db.write() as conn:
        for table, values in rows.items():
            conn.execute(insert(schema.metadata.tables[table]).values(**values))
        for rec_id, channel, deleted_at in recordings:  # rec_1: the oldest, but deleted
            conn.execute(
                text(
                    "INSERT INTO recordings (id, org_id, livemode, session_id, channel, status, "
                    "created_at, expires_at, deleted_at) VALUES (:id, 'org_a', false, 'sess_1', "
                    ":channel, 'ready', 1.0, 2.0, :deleted_at)"
                ),
                {"id": rec_id, "channel": channel, "deleted_at": deleted_at},
            )

    assert upgrade(empty_db).after == head()

    repo = Repository(empty_db)
    assert repo.get_org("org_a").record_by_default is True  # type: ignore[union-attr]
    session = repo.get_session_any("sess_1")
    assert session is not None and session.recording_id == "rec_2"
    assert session.end_reason is None  # not known for sessions ended before
    new, _ = repo.ensure_org("b", 30)
    assert repo.get_org(new.id).record_by_default is False  # type: ignore[union-attr]
