"""The `kallrec` command tree, run in-process through Typer's runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kallrec.cli import app
from kallrec.db.engine import Database
from kallrec.db.repository import Repository
from kallrec.db.schema_version import migrate
from tests.conftest import tone, write_wav

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KALLREC_DATA_DIR", raising=False)
    return tmp_path / "data"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def repo(data_dir: Path) -> Repository:
    db = Database(f"sqlite:///{data_dir / 'kallrec.db'}")
    migrate(db)
    return Repository(db)


def test_keys_create_prints_the_key_alone_on_the_last_line(data_dir: Path) -> None:
    code, out, _ = run(
        "keys", "create", "--org", "acme", "--mode", "test", "--data-dir", str(data_dir)
    )
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("sk_test_") and " " not in last
    assert repo(data_dir).get_org_by_name("acme") is not None


def test_data_dir_is_accepted_in_any_position(data_dir: Path) -> None:
    code, out, _ = run("keys", "create", "--data-dir", str(data_dir), "--org", "acme")
    assert code == 0 and out.strip().splitlines()[-1].startswith("sk_live_")


def test_data_dir_from_the_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALLREC_DATA_DIR", str(data_dir))
    assert run("keys", "create", "--org", "acme")[0] == 0
    assert (data_dir / "kallrec.db").exists()


def test_keys_list_never_prints_secrets(data_dir: Path) -> None:
    _, out, _ = run("keys", "create", "--org", "acme", "--name", "ci", "--data-dir", str(data_dir))
    secret = out.strip().splitlines()[-1]
    code, listing, _ = run("keys", "list", "--data-dir", str(data_dir))
    assert code == 0
    assert secret not in listing
    assert secret[:12] in listing and "ci" in listing and "acme" in listing


@pytest.mark.parametrize("by", ["secret", "id"])
def test_keys_revoke_by_secret_or_id(data_dir: Path, by: str) -> None:
    _, out, _ = run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    secret = out.strip().splitlines()[-1]
    key_id = repo(data_dir).list_keys()[0][0].id
    code, _, _ = run(
        "keys", "revoke", secret if by == "secret" else key_id, "--data-dir", str(data_dir)
    )
    assert code == 0
    assert repo(data_dir).list_keys()[0][0].revoked_at is not None


def test_revoking_an_unknown_key_fails(data_dir: Path) -> None:
    code, _, err = run("keys", "revoke", "key_nope", "--data-dir", str(data_dir))
    assert code == 1 and "No such key" in err


def test_unknown_scope_is_refused(data_dir: Path) -> None:
    code, _, err = run(
        "keys", "create", "--org", "a", "--scope", "everything", "--data-dir", str(data_dir)
    )
    assert code == 2 and "Unknown scope" in err


def test_scoped_key(data_dir: Path) -> None:
    run("keys", "create", "--org", "a", "--scope", "recordings:read", "--data-dir", str(data_dir))
    assert repo(data_dir).list_keys()[0][0].scopes == "recordings:read"


def test_import_prints_ids_last_and_waits_until_ready(data_dir: Path, tmp_path: Path) -> None:
    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    wav = write_wav(tmp_path / "call.wav", tone(2, 440))
    code, out, _ = run("import", str(wav), "--org", "acme", "--data-dir", str(data_dir))
    assert code == 0, out
    rec_id = out.strip().splitlines()[-1]
    assert rec_id.startswith("rec_")
    rec = repo(data_dir).get_recording_any(rec_id)
    assert rec is not None and rec.status == "ready" and rec.livemode is True
    assert wav.exists()  # the user's file is never consumed


def test_import_dual_prints_three_ids(data_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    wav = write_wav(tmp_path / "s.wav", np.stack([tone(1, 440), tone(1, 900)], axis=1))
    code, out, _ = run(
        "import",
        str(wav),
        "--org",
        "acme",
        "--mode",
        "test",
        "--channel",
        "dual",
        "--no-wait",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0
    ids = out.strip().splitlines()[-3:]
    assert all(i.startswith("rec_") for i in ids)
    assert repo(data_dir).get_recording_any(ids[0]).status == "processing"  # type: ignore[union-attr]


def test_import_of_a_rejected_file_exits_non_zero(data_dir: Path, tmp_path: Path) -> None:
    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    code, out, err = run("import", str(text), "--org", "acme", "--data-dir", str(data_dir))
    assert code != 0 and "rec_" not in out
    assert "not a WAV" in err or "not" in err


def test_import_for_an_unknown_org_fails(data_dir: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    code, _, err = run("import", str(wav), "--org", "nobody", "--data-dir", str(data_dir))
    assert code == 1 and "No such organization" in err


def test_orgs_update_and_purge_expire_recordings(data_dir: Path, tmp_path: Path) -> None:
    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    _, out, _ = run("import", str(wav), "--org", "acme", "--data-dir", str(data_dir))
    rec_id = out.strip().splitlines()[-1]
    code, _, _ = run("orgs", "update", "acme", "--retention-days", "1", "--data-dir", str(data_dir))
    assert code == 0
    code, out, _ = run("purge", "--data-dir", str(data_dir))
    assert "Expired 0" in out
    code, out, _ = run(
        "purge", "--before", "2999-01-01T00:00:00Z", "--org", "acme", "--data-dir", str(data_dir)
    )
    assert code == 0 and "Expired 1" in out
    assert repo(data_dir).get_recording_any(rec_id).status == "expired"  # type: ignore[union-attr]


def test_orgs_update_sets_whether_sessions_record_by_default(data_dir: Path) -> None:
    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    assert repo(data_dir).get_org_by_name("acme").record_by_default is False  # type: ignore[union-attr]
    code, out, _ = run("orgs", "update", "acme", "--record-by-default", "--data-dir", str(data_dir))
    assert code == 0 and "now record" in out
    assert repo(data_dir).get_org_by_name("acme").record_by_default is True  # type: ignore[union-attr]
    code, out, _ = run("orgs", "list", "--data-dir", str(data_dir))
    assert code == 0 and "records by default" in out and "yes" in out
    code, out, _ = run(
        "orgs", "update", "acme", "--no-record-by-default", "--data-dir", str(data_dir)
    )
    assert code == 0 and "no longer record" in out
    org = repo(data_dir).get_org_by_name("acme")
    assert org is not None and org.record_by_default is False and org.retention_days == 30


def test_orgs_update_needs_something_to_change(data_dir: Path) -> None:
    run("keys", "create", "--org", "acme", "--data-dir", str(data_dir))
    code, _, err = run("orgs", "update", "acme", "--data-dir", str(data_dir))
    assert code == 1 and "Nothing to change" in err


def test_purge_rejects_a_bad_date(data_dir: Path) -> None:
    code, _, err = run("purge", "--before", "last tuesday", "--data-dir", str(data_dir))
    assert code == 2 and "ISO 8601" in err
