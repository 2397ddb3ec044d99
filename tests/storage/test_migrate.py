"""`kallrec storage migrate`: every object copied and verified, resumable, both directions."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from kallrec.cli import app
from kallrec.config import Settings
from kallrec.runtime import Runtime
from kallrec.storage import LocalStorage, Storage
from kallrec.storage.migrate import (
    Journal,
    journal_path,
    list_objects,
    migrate,
    recording_hashes,
    run_migration,
)
from kallrec.storage.s3 import S3Storage
from tests.api.helpers import import_file, ready_recording
from tests.conftest import Caller, tone, write_wav
from tests.storage.conftest import s3_storage
from tests.storage.moto_s3 import MotoS3


async def _contents(storage: Storage) -> dict[str, bytes]:
    return {o.key: await storage.read_all(o.key) for o in await list_objects(storage)}


@pytest.fixture
async def populated(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path
) -> Runtime:
    """Local storage holding two recordings, a conversion and a staged (processing) import."""
    for n in (1, 2):
        (tmp_path / str(n)).mkdir()
        rec = await ready_recording(client, runtime, caller, tmp_path / str(n), seconds=n)
    download = f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000"
    assert (await client.get(download, headers=caller.headers)).status_code == 302
    staged = await import_file(client, caller, write_wav(tmp_path / "p.wav", tone(1, 300)))
    assert staged.status_code == 202
    prefixes = {o.key.split("/")[0] for o in await list_objects(runtime.storage)}
    assert prefixes == {"recordings", "converted", "staging"}
    return runtime


def _s3_settings(settings: Settings, moto: MotoS3) -> Settings:
    env = moto.env("")
    return replace(
        settings,
        s3_endpoint_url=env["KALLREC_S3_ENDPOINT_URL"],
        s3_region=env["KALLREC_S3_REGION"],
        s3_access_key_id=env["KALLREC_S3_ACCESS_KEY_ID"],
        s3_secret_access_key=env["KALLREC_S3_SECRET_ACCESS_KEY"],
    )


async def test_local_to_s3_and_back(populated: Runtime, moto_s3: MotoS3, tmp_path: Path) -> None:
    settings = _s3_settings(populated.settings, moto_s3)
    target = f"s3://{moto_s3.create_bucket()}/moved"
    lines: list[str] = []
    report = await run_migration(settings, target, lines.append)
    assert report.ok and report.copied == report.total == 4 and report.already == 0
    source = await _contents(populated.storage)
    bucket = target.removeprefix("s3://").split("/")[0]
    s3 = S3Storage(bucket, "moved", s3_storage(moto_s3).options)
    assert await _contents(s3) == source
    assert any("copied recordings/" in line for line in lines)

    # Idempotent: a second run uploads nothing and reads nothing back (the journal says so).
    again = await run_migration(settings, target, lines.append)
    assert again.ok and (again.copied, again.already) == (0, 4)

    # ... and the way back, S3 → file://, from a data dir whose storage is the bucket.
    back_dir = tmp_path / "back"
    s3_side = replace(settings, storage_url=target)
    report = await run_migration(s3_side, f"file://{back_dir}", lines.append)
    assert report.ok and report.copied == 4
    assert await _contents(LocalStorage(back_dir)) == source


async def test_resumes_from_what_the_target_already_has(
    populated: Runtime, moto_s3: MotoS3, tmp_path: Path
) -> None:
    target = s3_storage(moto_s3)
    expected = recording_hashes(populated.db)
    journal_file = tmp_path / "journal.jsonl"
    objects = await list_objects(populated.storage)
    # A first run that died after two objects (and without its journal).
    for obj in objects[:2]:
        await populated.storage.fetch_to(obj.key, tmp_path / "x")
        await target.put_file(obj.key, tmp_path / "x")
    puts: list[str] = []
    real_put = target.put_file

    async def counting_put(key: str, src: Path):  # type: ignore[no-untyped-def]
        puts.append(key)
        return await real_put(key, src)

    target.put_file = counting_put  # type: ignore[method-assign]
    journal = Journal(journal_file)
    try:
        report = await migrate(
            populated.storage,
            target,
            expected=expected,
            journal=journal,
            tmp_dir=tmp_path / "tmp",
        )
    finally:
        journal.close()
    assert report.ok and (report.copied, report.already) == (len(objects) - 2, 2)
    assert sorted(puts) == sorted(o.key for o in objects[2:])
    assert set(Journal(journal_file).done) == {o.key for o in objects}


async def test_a_damaged_recording_fails_and_is_not_copied(
    populated: Runtime, tmp_path: Path
) -> None:
    assert isinstance(populated.storage, LocalStorage)
    mp3 = next(iter(recording_hashes(populated.db)))
    path = populated.storage.root / mp3
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    target = LocalStorage(tmp_path / "target")
    journal = Journal(tmp_path / "j.jsonl")
    try:
        report = await migrate(
            populated.storage,
            target,
            expected=recording_hashes(populated.db),
            journal=journal,
            tmp_dir=tmp_path / "tmp",
        )
    finally:
        journal.close()
    assert [key for key, _ in report.failures] == [mp3]
    assert "does not match the recording" in report.failures[0][1]
    assert await target.stat(mp3) is None
    assert report.copied == report.total - 1


async def test_the_same_storage_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="current storage"):
        await run_migration(settings, settings.resolved_storage_url + "/", print)


def test_journal_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.record("a", 1, "x")
    journal.close()
    with path.open("a") as fh:
        fh.write('{"key": "b", "si')
    assert Journal(path).done == {"a": (1, "x")}
    assert journal_path(tmp_path, "s3://b/p") != journal_path(tmp_path, "s3://b/q")


def test_cli_migrates_and_exits_non_zero_on_damage(
    tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "data"
    monkeypatch.delenv("KALLREC_DATA_DIR", raising=False)
    for name, value in moto_s3.env("").items():
        if name != "KALLREC_STORAGE_URL":
            monkeypatch.setenv(name, value)
    runner.invoke(app, ["keys", "create", "--org", "acme", "--data-dir", str(data_dir)])
    wav = write_wav(tmp_path / "call.wav", tone(1, 440))
    imported = runner.invoke(
        app, ["import", str(wav), "--org", "acme", "--data-dir", str(data_dir)]
    )
    assert imported.exit_code == 0, imported.output
    target = f"s3://{moto_s3.create_bucket()}/kallrec"

    done = runner.invoke(app, ["storage", "migrate", "--to", target, "--data-dir", str(data_dir)])
    assert done.exit_code == 0, done.output
    assert f"KALLREC_STORAGE_URL={target}" in done.stdout
    assert "1 copied" in done.stdout

    mp3 = next((data_dir / "audio" / "recordings").rglob("*.mp3"))
    mp3.write_bytes(b"not the recording")
    other = f"s3://{moto_s3.create_bucket()}/kallrec"
    failed = runner.invoke(app, ["storage", "migrate", "--to", other, "--data-dir", str(data_dir)])
    assert failed.exit_code == 1
    assert "does not match the recording" in failed.stderr
    digest = hashlib.sha256(b"not the recording").hexdigest()
    assert digest[:12] in failed.stderr

    same = runner.invoke(
        app, ["storage", "migrate", "--to", f"file://{data_dir}/audio", "--data-dir", str(data_dir)]
    )
    assert same.exit_code == 2
