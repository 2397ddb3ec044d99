"""The outbox: changes made through the API queue one delivery per subscribed endpoint, with
the event's exact payload, in the transaction of the change."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from kallrec.db import schema as t
from kallrec.runtime import Runtime
from tests.api.helpers import ready_recording
from tests.conftest import Caller
from tests.webhooks.helpers import add_endpoint, deliveries


def payload_of(rt: Runtime, event_id: str) -> dict:  # type: ignore[type-arg]
    with rt.db.read() as conn:
        raw = conn.execute(t.events.select().where(t.events.c.id == event_id)).mappings().one()
    return json.loads(raw["payload"])  # type: ignore[no-any-return]


async def test_import_queues_recording_ready_for_subscribers(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller, tmp_path: Path
) -> None:
    ready_hook = add_endpoint(runtime, "http://127.0.0.1:9/ready", ["recording.ready"])
    every_hook = add_endpoint(runtime, "http://127.0.0.1:9/all", ["*"])
    other_type = add_endpoint(runtime, "http://127.0.0.1:9/ended", ["recording.failed"])
    live_hook = add_endpoint(runtime, "http://127.0.0.1:9/live", ["*"], live=True)
    other_org = add_endpoint(runtime, "http://127.0.0.1:9/globex", ["*"], org="globex")
    gone = add_endpoint(runtime, "http://127.0.0.1:9/gone", ["*"])
    runtime.webhooks.delete_endpoint(gone.id)

    recording = await ready_recording(client, runtime, caller, tmp_path, seconds=1.0)

    (ready_delivery,) = deliveries(runtime, ready_hook)
    assert ready_delivery.event_type == "recording.ready"
    assert (ready_delivery.status, ready_delivery.attempts) == ("pending", 0)
    event = payload_of(runtime, ready_delivery.event_id)
    assert event["id"] == ready_delivery.event_id and event["id"].startswith("evt_")
    assert (event["object"], event["type"], event["api_version"]) == (
        "event",
        "recording.ready",
        "v1",
    )
    assert event["created_at"].endswith("Z") and event["livemode"] is False
    assert event["data"] == recording  # the object as GET /v1/recordings/{id} shows it

    assert [d.event_id for d in deliveries(runtime, every_hook)] == [ready_delivery.event_id]
    for endpoint in (other_type, live_hook, other_org, gone):
        assert deliveries(runtime, endpoint) == []


async def test_session_events_carry_no_stream_token(
    client: httpx.AsyncClient, runtime: Runtime, caller: Caller
) -> None:
    hook = add_endpoint(runtime, "http://127.0.0.1:9/s", ["session.created", "session.ended"])
    created = await client.post("/v1/sessions", json={"mode": "ai_agent"}, headers=caller.headers)
    assert created.status_code == 201
    session = created.json()
    await client.post(f"/v1/sessions/{session['id']}/end", headers=caller.headers)
    rows = deliveries(runtime, hook)
    assert [r.event_type for r in rows] == ["session.ended", "session.created"]
    first = payload_of(runtime, rows[1].event_id)
    assert first["data"]["id"] == session["id"] and first["data"]["stream"] is None
    assert session["stream"]["token"] not in json.dumps(first)


async def test_old_finished_deliveries_are_pruned_and_pending_ones_kept(runtime, caller, tmp_path):
    import time

    from sqlalchemy import func, select, update

    from kallrec.db import schema as t
    from kallrec.importing import ImportRequest, import_audio
    from kallrec.webhooks.endpoints import new_endpoint
    from tests.conftest import drain_jobs, tone, write_wav

    endpoint = new_endpoint(
        caller.org_id, False, "http://127.0.0.1:9/hook", ["recording.ready"], None
    )
    runtime.webhooks.insert_endpoint(endpoint)
    for n in range(2):
        wav = write_wav(tmp_path / f"c{n}.wav", tone(0.5, 440))
        await import_audio(runtime, caller.org_id, False, ImportRequest(wav, "c.wav"))
    await drain_jobs(runtime)
    d = t.webhook_deliveries
    with runtime.db.write() as conn:
        first = conn.execute(select(d.c.id).order_by(d.c.id).limit(1)).scalar_one()
        conn.execute(update(d).where(d.c.id == first).values(status="succeeded", updated_at=0))
        conn.execute(update(t.events).values(created_at=0))
    assert runtime.webhooks.prune_history(time.time() - 86400) == 1
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(d)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(t.events)).scalar_one() == 1
