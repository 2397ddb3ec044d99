"""`kallrec webhooks …` through Typer's runner, on a real data directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kallrec.cli import app
from kallrec.config import Settings
from kallrec.db.webhook_repository import AttemptResult
from kallrec.runtime import Runtime
from tests.webhooks.helpers import emit

runner = CliRunner()
URL = "https://hooks.example.com/in"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KALLREC_DATA_DIR", raising=False)
    return tmp_path / "data"


def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["webhooks", *args, "--data-dir", str(data_dir)])
    return result.exit_code, result.stdout, result.stderr


def open_runtime(data_dir: Path) -> Runtime:
    return Runtime(Settings.from_env({}, data_dir=data_dir))


def test_add_prints_the_secret_alone_last_and_creates_the_org(data_dir: Path) -> None:
    code, out, err = run(
        data_dir,
        "add",
        URL,
        "--org",
        "acme",
        "--events",
        "recording.ready, session.ended",
        "--mode",
        "test",
        "--description",
        "ops",
    )
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and " " not in secret
    rt = open_runtime(data_dir)
    try:
        ((endpoint, org_name),) = rt.webhooks.list_all_endpoints()
    finally:
        rt.close()
    assert endpoint.id in err and org_name == "acme"
    assert (endpoint.secret, endpoint.url, endpoint.livemode) == (secret, URL, False)
    assert endpoint.enabled_events == ["recording.ready", "session.ended"]
    assert endpoint.description == "ops"


def test_add_takes_kallglots_event_names(data_dir: Path) -> None:
    events = "session.provider.connected,transcript.ready,analysis.failed,recording.ready"
    code, _, err = run(data_dir, "add", URL, "--org", "acme", "--events", events)
    assert code == 0, err
    rt = open_runtime(data_dir)
    try:
        ((endpoint, _),) = rt.webhooks.list_all_endpoints()
    finally:
        rt.close()
    assert endpoint.enabled_events == events.split(",")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ftp://x/y", "--events", "recording.ready"), "http or https"),
        (("/relative", "--events", "recording.ready"), "absolute"),
        ((URL, "--events", "recording.exploded"), "unknown event type"),
        ((URL, "--events", ","), "--events"),
        ((URL, "--events", "*", "--mode", "staging"), "--mode"),
    ],
)
def test_add_refuses_bad_input(data_dir: Path, args: tuple[str, ...], message: str) -> None:
    code, out, err = run(data_dir, "add", *args[:1], "--org", "acme", *args[1:])
    assert code == 2 and out == ""
    assert message in err


def test_list_remove_and_deliveries(data_dir: Path) -> None:
    _, out, _ = run(data_dir, "add", URL, "--org", "acme", "--events", "*")
    secret = out.strip().splitlines()[-1]
    run(data_dir, "add", URL + "/b", "--org", "globex", "--events", "recording.failed")

    code, listing, _ = run(data_dir, "list")
    assert code == 0 and secret not in listing
    assert "acme" in listing and "globex" in listing and "recording.failed" in listing
    _, only_acme, _ = run(data_dir, "list", "--org", "acme")
    assert "globex" not in only_acme
    assert run(data_dir, "list", "--org", "nobody")[0] == 1

    rt = open_runtime(data_dir)
    try:
        endpoint = next(e for e, org in rt.webhooks.list_all_endpoints() if org == "acme")
        emit(rt, endpoint)
        emit(rt, endpoint, "session.created")
        (claim,) = rt.webhooks.claim_deliveries(1, 60, 8, 4)
        rt.webhooks.record_failure(
            claim, AttemptResult(1, time.time(), 12.3, 500, "http_status"), time.time()
        )
        (claim,) = rt.webhooks.claim_deliveries(1, 60, 8, 4)
        rt.webhooks.record_success(claim, AttemptResult(2, time.time(), 4.0, 204, None))
    finally:
        rt.close()

    code, shown, _ = run(data_dir, "deliveries", "--endpoint", endpoint.id)
    assert code == 0
    assert claim.id in shown and "succeeded" in shown and "pending" in shown
    assert "#1 500 12 ms http_status" in shown and "#2 204 4 ms" in shown
    _, succeeded, _ = run(data_dir, "deliveries", "--status", "succeeded")
    assert claim.id in succeeded and "pending" not in succeeded
    assert run(data_dir, "deliveries", "--status", "lost")[0] == 2

    code, removed, _ = run(data_dir, "remove", endpoint.id)
    assert code == 0 and "canceled 1 pending" in removed
    _, listing, _ = run(data_dir, "list")
    assert endpoint.id not in listing
    code, _, err = run(data_dir, "remove", endpoint.id)
    assert code == 1 and "No such webhook endpoint" in err


def test_add_refuses_non_public_destinations_unless_allowed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALLREC_WEBHOOK_ALLOWED_NETWORKS", raising=False)
    for url in ("http://127.0.0.1:9/in", "http://127.1:9/in", "http://localhost:9/in"):
        code, out, err = run(data_dir, "add", url, "--org", "acme", "--events", "*")
        assert code == 2 and out == "", err
        assert "KALLREC_WEBHOOK_ALLOWED_NETWORKS" in " ".join(err.split())
    code, _, err = run(
        data_dir, "add", "http://u:p@hooks.example.com/", "--org", "a", "--events", "*"
    )
    assert code == 2 and "credentials" in err

    monkeypatch.setenv("KALLREC_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    code, out, err = run(data_dir, "add", "http://127.0.0.1:9/in", "--org", "acme", "--events", "*")
    assert code == 0 and out.strip().splitlines()[-1].startswith("whsec_"), err
    monkeypatch.setenv("KALLREC_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/33")
    code, _, err = run(data_dir, "add", "http://127.0.0.1:9/in", "--org", "acme", "--events", "*")
    assert code == 2 and "KALLREC_WEBHOOK_ALLOWED_NETWORKS" in err
