"""/v1/webhook_endpoints: create, list, retrieve, delete, deliveries; validation, scope, tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kallrec.runtime import Runtime
from tests.conftest import Caller
from tests.webhooks.helpers import emit, sending, wait_until
from tests.webhooks.receiver import Receiver, Respond

URL = "https://hooks.example.com/kallrec"
BASE = "/v1/webhook_endpoints"


async def create(
    client: httpx.AsyncClient, caller: Caller, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    payload = body if body is not None else {"url": URL, "enabled_events": ["recording.ready"]}
    return await client.post(BASE, json=payload, headers={**caller.headers, **headers})


def assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error


async def test_create_returns_the_secret_once(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await create(
        client,
        caller,
        {"url": URL, "enabled_events": ["recording.ready", "session.ended"], "description": "CI"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {
        "id",
        "object",
        "url",
        "enabled_events",
        "description",
        "secret",
        "created_at",
        "livemode",
    }
    assert created["id"].startswith("wh_") and not created["id"].startswith("wh_del_")
    assert created["object"] == "webhook_endpoint"
    assert created["url"] == URL
    assert created["enabled_events"] == ["recording.ready", "session.ended"]
    assert created["description"] == "CI"
    assert created["secret"].startswith("whsec_")
    assert created["created_at"].endswith("Z")
    assert created["livemode"] is False

    got = await client.get(f"{BASE}/{created['id']}", headers=caller.headers)
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = await client.get(BASE, headers=caller.headers)
    assert listed.json()["data"] == [got.json()]
    assert created["secret"] not in listed.text + got.text


async def test_list_is_newest_first_with_cursors(client: httpx.AsyncClient, caller: Caller) -> None:
    ids = [(await create(client, caller)).json()["id"] for _ in range(3)]
    first = (await client.get(f"{BASE}?limit=2", headers=caller.headers)).json()
    assert first["object"] == "list" and first["url"] == BASE
    assert [e["id"] for e in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    rest = await client.get(f"{BASE}?starting_after={ids[1]}", headers=caller.headers)
    assert [e["id"] for e in rest.json()["data"]] == [ids[0]] and rest.json()["has_more"] is False
    before = await client.get(f"{BASE}?ending_before={ids[0]}&limit=1", headers=caller.headers)
    assert [e["id"] for e in before.json()["data"]] == [ids[1]]

    assert_error(
        await client.get(f"{BASE}?limit=0", headers=caller.headers), 400, "invalid_request", "limit"
    )
    unknown = await client.get(f"{BASE}?starting_after=wh_nope", headers=caller.headers)
    assert_error(unknown, 400, "invalid_request", "starting_after")


async def test_delete_is_soft_and_final(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    endpoint_id = (await create(client, caller)).json()["id"]
    endpoint = runtime.webhooks.get_endpoint(endpoint_id)
    assert endpoint is not None
    emit(runtime, endpoint)  # a pending delivery, which the delete must cancel

    deleted = await client.delete(f"{BASE}/{endpoint_id}", headers=caller.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}

    for response in (
        await client.get(f"{BASE}/{endpoint_id}", headers=caller.headers),
        await client.delete(f"{BASE}/{endpoint_id}", headers=caller.headers),
        await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=caller.headers),
    ):
        assert_error(response, 404, "resource_missing", "endpoint_id")
    assert (await client.get(BASE, headers=caller.headers)).json()["data"] == []
    rows, _ = runtime.webhooks.list_deliveries(endpoint_ids=[endpoint_id])
    assert [r.status for r in rows] == ["canceled"]
    emit(runtime, endpoint)  # nothing is queued for a deleted endpoint any more
    assert len(runtime.webhooks.list_deliveries(endpoint_ids=[endpoint_id])[0]) == 1


# Every event Kallglot's docs list (webhooks/overview), in their order.
KALLGLOT_EVENTS = [
    "session.created",
    "session.started",
    "session.ended",
    "transcript.ready",
    "transcript.segment",
    "recording.ready",
    "recording.failed",
    "analysis.complete",
    "analysis.failed",
    "session.provider.connected",
    "session.provider.disconnected",
]


async def test_every_kallglot_event_name_may_be_subscribed_to(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await create(client, caller, {"url": URL, "enabled_events": KALLGLOT_EVENTS})
    assert response.status_code == 201, response.text
    assert response.json()["enabled_events"] == KALLGLOT_EVENTS


async def test_an_unknown_event_names_kallglots_in_the_known_list(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    response = await create(client, caller, {"url": URL, "enabled_events": ["analysis.completed"]})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "analysis.complete," in message and "session.provider.connected" in message


async def test_subscribing_to_events_kallrec_does_not_send_gets_none_of_the_others(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    body = {"url": URL, "enabled_events": ["transcript.ready", "analysis.complete"]}
    endpoint = runtime.webhooks.get_endpoint((await create(client, caller, body)).json()["id"])
    assert endpoint is not None
    emit(runtime, endpoint, "session.created", {"id": "sess_1"})
    emit(runtime, endpoint, "recording.ready")
    assert runtime.webhooks.list_deliveries(endpoint_ids=[endpoint.id])[0] == []


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"enabled_events": ["recording.ready"]}, "url", "missing_required_field"),
        ({"url": None, "enabled_events": ["recording.ready"]}, "url", "missing_required_field"),
        ({"url": 42, "enabled_events": ["recording.ready"]}, "url", "invalid_field_value"),
        ({"url": "ftp://example.com/hook", "enabled_events": ["*"]}, "url", "invalid_field_value"),
        ({"url": "/relative/hook", "enabled_events": ["*"]}, "url", "invalid_field_value"),
        ({"url": "https:///no-host", "enabled_events": ["*"]}, "url", "invalid_field_value"),
        ({"url": "https://example.com/a b", "enabled_events": ["*"]}, "url", "invalid_field_value"),
        (
            {"url": "https://example.com:99999/", "enabled_events": ["*"]},
            "url",
            "invalid_field_value",
        ),
        (
            {"url": "https://example.com/" + "a" * 2030, "enabled_events": ["*"]},
            "url",
            "invalid_field_value",
        ),
        ({"url": URL}, "enabled_events", "missing_required_field"),
        ({"url": URL, "enabled_events": []}, "enabled_events", "invalid_field_value"),
        (
            {"url": URL, "enabled_events": "recording.ready"},
            "enabled_events",
            "invalid_field_value",
        ),
        (
            {"url": URL, "enabled_events": ["recording.exploded"]},
            "enabled_events",
            "invalid_field_value",
        ),
        ({"url": URL, "enabled_events": [7]}, "enabled_events", "invalid_field_value"),
        (
            {"url": URL, "enabled_events": ["*"], "description": 5},
            "description",
            "invalid_field_value",
        ),
        (
            {"url": URL, "enabled_events": ["*"], "description": "x" * 1001},
            "description",
            "invalid_field_value",
        ),
        (
            {"url": URL, "enabled_events": ["*"], "secret": "whsec_mine"},
            "secret",
            "invalid_request",
        ),
        ({"url": URL, "enabled_events": ["*"], "metadata": {}}, "metadata", "invalid_request"),
    ],
)
async def test_field_errors_are_validation_errors_naming_the_parameter(
    client: httpx.AsyncClient, caller: Caller, body: dict[str, Any], param: str, code: str
) -> None:
    response = await create(client, caller, body)
    assert_error(response, 400, code, param)
    assert response.json()["error"]["type"] == "validation_error"
    assert (await client.get(BASE, headers=caller.headers)).json()["data"] == []


async def test_body_must_be_a_json_object(client: httpx.AsyncClient, caller: Caller) -> None:
    response = await client.post(BASE, content=b"[1]", headers=caller.headers)
    assert_error(response, 400, "invalid_request", None)


async def test_longest_url_and_events_normalised(client: httpx.AsyncClient, caller: Caller) -> None:
    url = "http://example.com/" + "a" * (2048 - 19)
    assert len(url) == 2048
    body = {"url": url, "enabled_events": ["recording.ready", "recording.ready"]}
    assert (await create(client, caller, body)).json()["enabled_events"] == ["recording.ready"]
    wildcard = {"url": URL, "enabled_events": ["session.created", "*"]}
    assert (await create(client, caller, wildcard)).json()["enabled_events"] == ["*"]


async def test_scope_is_required(client: httpx.AsyncClient, make_caller) -> None:  # type: ignore[no-untyped-def]
    owner = make_caller()
    endpoint_id = (await create(client, owner)).json()["id"]
    reader = make_caller(scopes=("recordings:read", "sessions:write"))
    for response in (
        await create(client, reader),
        await client.get(BASE, headers=reader.headers),
        await client.get(f"{BASE}/{endpoint_id}", headers=reader.headers),
        await client.delete(f"{BASE}/{endpoint_id}", headers=reader.headers),
        await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=reader.headers),
    ):
        assert_error(response, 403, "insufficient_permissions", None)
    manager = make_caller(scopes=("webhooks:manage",))
    assert (await client.get(f"{BASE}/{endpoint_id}", headers=manager.headers)).status_code == 200
    assert (await client.get(BASE)).status_code == 401


@pytest.mark.parametrize("other", ["org", "mode"])
async def test_other_org_or_mode_sees_nothing(
    client: httpx.AsyncClient,
    make_caller,
    other: str,  # type: ignore[no-untyped-def]
) -> None:
    owner = make_caller("acme", live=False)
    stranger = make_caller("globex") if other == "org" else make_caller("acme", live=True)
    endpoint_id = (await create(client, owner)).json()["id"]
    assert (await client.get(BASE, headers=stranger.headers)).json()["data"] == []
    for response in (
        await client.get(f"{BASE}/{endpoint_id}", headers=stranger.headers),
        await client.delete(f"{BASE}/{endpoint_id}", headers=stranger.headers),
        await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=stranger.headers),
    ):
        assert_error(response, 404, "resource_missing", "endpoint_id")
    assert (await client.get(f"{BASE}/{endpoint_id}", headers=owner.headers)).status_code == 200
    live = (await create(client, make_caller("acme", live=True))).json()
    assert live["livemode"] is True
    assert [e["id"] for e in (await client.get(BASE, headers=owner.headers)).json()["data"]] == [
        endpoint_id
    ]


async def test_idempotent_create(client: httpx.AsyncClient, caller: Caller) -> None:
    first = await create(client, caller, None, **{"Idempotency-Key": "hook-1"})
    again = await create(client, caller, None, **{"Idempotency-Key": "hook-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len((await client.get(BASE, headers=caller.headers)).json()["data"]) == 1
    other = {"url": URL + "/2", "enabled_events": ["*"]}
    mismatch = await create(client, caller, other, **{"Idempotency-Key": "hook-1"})
    assert_error(mismatch, 400, "idempotency_mismatch", "Idempotency-Key")


async def test_deliveries_are_listed_with_attempts(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    endpoint_id = (await create(client, caller, {"url": URL, "enabled_events": ["*"]})).json()["id"]
    endpoint = runtime.webhooks.get_endpoint(endpoint_id)
    assert endpoint is not None
    first_event = emit(runtime, endpoint, "session.created", {"id": "sess_1"})
    second_event = emit(runtime, endpoint, "recording.ready", {"id": "rec_1"})
    response = await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == f"{BASE}/{endpoint_id}/deliveries" and body["has_more"] is False
    assert [d["event_id"] for d in body["data"]] == [second_event, first_event]
    newest = body["data"][0]
    assert newest["id"].startswith("wh_del_") and newest["object"] == "webhook_delivery"
    assert newest["event_type"] == "recording.ready"
    assert (newest["status"], newest["attempt_count"], newest["attempts"]) == ("pending", 0, [])
    assert newest["next_attempt_at"].endswith("Z")

    filtered = await client.get(
        f"{BASE}/{endpoint_id}/deliveries?status=succeeded", headers=caller.headers
    )
    assert filtered.json()["data"] == []
    paged = await client.get(
        f"{BASE}/{endpoint_id}/deliveries?limit=1&starting_after={newest['id']}",
        headers=caller.headers,
    )
    assert [d["event_id"] for d in paged.json()["data"]] == [first_event]
    bad = await client.get(f"{BASE}/{endpoint_id}/deliveries?status=lost", headers=caller.headers)
    assert_error(bad, 400, "invalid_request", "status")


# -- spec §9: what the operator allowed, and what the history shows --------------------------------


async def test_an_allowed_network_is_accepted_and_others_still_refused(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    # These tests' settings allow 127.0.0.0/8 (a receiver on the same host).
    for url in ("http://127.0.0.1:9/hook", "http://127.0.0.2:9/hook", "http://localhost:9/hook"):
        assert (
            await create(client, caller, {"url": url, "enabled_events": ["*"]})
        ).status_code == 201
    for url in ("http://[::1]:9/hook", "http://169.254.169.254/", "http://10.0.0.1/"):
        response = await create(client, caller, {"url": url, "enabled_events": ["*"]})
        assert_error(response, 400, "invalid_field_value", "url")
        assert "KALLREC_WEBHOOK_ALLOWED_NETWORKS" in response.json()["error"]["message"]


async def test_delivery_history_shows_categories_never_error_text_or_headers(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    redirect = Respond(302, headers={"Location": metadata, "X-Internal-Secret": "s3cr3t"})
    with Receiver() as closed:
        closed_port = closed.port  # nobody listens there any more
    with Receiver([redirect]) as redirecting, Receiver([Respond(200, delay=5)]) as hung:
        urls = {
            "connection_refused": f"http://127.0.0.1:{closed_port}/hook",
            "http_status": redirecting.url,
            "timeout": hung.url,
            "tls_error": f"https://127.0.0.1:{redirecting.port}/hook",  # TLS to a plain server
        }
        ids = {}
        for expected, url in urls.items():
            body = {"url": url, "enabled_events": ["session.created"]}
            ids[expected] = (await create(client, caller, body)).json()["id"]
        endpoint = runtime.webhooks.get_endpoint(ids["timeout"])
        assert endpoint is not None
        emit(runtime, endpoint, "session.created", {"id": "sess_1"})  # to all four

        def all_failed() -> bool:
            rows, _ = runtime.webhooks.list_deliveries(endpoint_ids=list(ids.values()))
            return len(rows) == 4 and all(r.status == "failed" for r in rows)

        async with sending(runtime):
            await wait_until(all_failed, seconds=20)
    for expected, endpoint_id in ids.items():
        response = await client.get(f"{BASE}/{endpoint_id}/deliveries", headers=caller.headers)
        (delivery,) = response.json()["data"]
        attempts = delivery["attempts"]
        assert [a["category"] for a in attempts] == [expected] * 3, attempts
        assert [a["error"] for a in attempts] == [expected] * 3
        statuses = {a["response_status"] for a in attempts}
        assert statuses == ({302} if expected == "http_status" else {None})
        for leak in ("169.254", "meta-data", "Location", "s3cr3t", "Errno", "Connection refused",
                     "SSL", "certificate", "timed out", str(closed_port)):  # fmt: skip
            assert leak not in response.text, (expected, leak, response.text)
