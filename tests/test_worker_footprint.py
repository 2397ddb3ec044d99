"""A server worker loads only what serving needs (each of these costs every worker MiBs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kallrec.config import Settings
from kallrec.db.engine import Database
from kallrec.db.schema_version import migrate

NOT_IN_A_WORKER = ("alembic", "httpx", "rich", "typer", "click", "numpy", "soundfile", "lameenc")

WORKER = """
import json, sys
from kallrec.app import create_app
from kallrec.config import Settings
from pathlib import Path
app = create_app(Settings(data_dir=Path(sys.argv[1])))
app.start()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_a_worker_on_a_migrated_database_loads_no_cli_audio_or_migration_code(
    tmp_path: Path,
) -> None:
    migrate(Database(Settings(data_dir=tmp_path).resolved_database_url))  # what serve does first
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "starlette" in loaded and "sqlalchemy" in loaded  # it did load the app
    assert loaded.isdisjoint(NOT_IN_A_WORKER), loaded & set(NOT_IN_A_WORKER)
