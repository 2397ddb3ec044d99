"""Health, readiness, metrics and the API description."""

from __future__ import annotations

from tests.api.helpers import ready_recording


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_database_and_storage(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "storage": "ok"}


async def test_readyz_is_503_when_storage_is_unwritable(client, runtime, monkeypatch):
    from kallrec.storage import StorageError

    async def down() -> None:
        raise StorageError("gone")

    monkeypatch.setattr(runtime.storage, "ping", down)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith("unavailable")


async def test_metrics_count_requests_bytes_and_recordings(client, runtime, caller, tmp_path):
    rec = await ready_recording(client, runtime, caller, tmp_path)
    await client.get(f"/v1/recordings/{rec['id']}/audio", headers=caller.headers)
    text = (await client.get("/metrics")).text
    assert (
        'kallrec_http_requests_total{method="GET",route="/v1/recordings/{recording_id}/audio",'
        'status="200"} 1.0' in text
    )
    assert f"kallrec_audio_bytes_served_total {float(rec['size'])}" in text
    assert 'kallrec_recordings{status="ready"} 1.0' in text
    assert "kallrec_http_request_duration_seconds_bucket" in text


async def test_openapi_and_docs_are_served(client):
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    docs = await client.get("/docs")
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
