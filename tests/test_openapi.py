"""The OpenAPI document: valid 3.1, complete, and in step with the code's routes and objects."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.routing import Route, WebSocketRoute

from kallrec import ids, languages
from kallrec.app import ROUTES
from kallrec.auth import ALL_SCOPES
from kallrec.db.models import Recording, Session
from kallrec.db.webhook_repository import (
    DELIVERY_STATUSES,
    AttemptResult,
    DeliveryRecord,
    WebhookEndpoint,
)
from kallrec.download_links import signed_path
from kallrec.errors import ApiError, Conflict, RateLimited
from kallrec.events import EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES
from kallrec.openapi import openapi_document
from kallrec.runtime import Runtime
from kallrec.webhooks.endpoints import ALL_EVENTS, delivery_object, endpoint_object
from kallrec.wire import recording_object, session_object
from tests.api.helpers import import_file
from tests.conftest import Caller, tone, write_wav
from tests.webhooks.helpers import emit

DOC = openapi_document()
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# HEAD is documented where it means something of its own; Starlette adds it to every GET route.
HEAD_DOCUMENTED = {
    "/v1/recordings/{recording_id}/audio",
    "/v1/recordings/{recording_id}/download/file",
    "/v1/playback/{link_id}/audio",
}
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/redoc.standalone.js",
    "/console",
    "/console/assets/{name}",
}
# /v1 paths that take no key: the signed URL is the authorization (so no rate-limit headers).
SIGNED = {
    "/v1/recordings/{recording_id}/download/file",
    "/v1/playback/{link_id}/audio",
    "/v1/playback/{link_id}/peaks",
}
NOW = 1_774_523_060.0


def _route_path(route: Route) -> str:
    return re.sub(r"{(\w+):[^}]+}", r"{\1}", route.path)  # drop convertors: {id:int} → {id}


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def _resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOC
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _check(instance: Any, schema_name: str) -> None:
    """Validates ``instance`` against a component schema (JSON Schema 2020-12)."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": DOC["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def _recording(status: str = "ready", **changes: Any) -> Recording:
    ready = status == "ready"
    fields: dict[str, Any] = {
        "id": "rec_01JQ0000000000000000000000",
        "org_id": "org_01JQ0000000000000000000000",
        "livemode": False,
        "session_id": "sess_01JQ0000000000000000000000",
        "channel": "mixed",
        "status": status,
        "duration": 245.3 if status != "processing" else None,
        "size": 981_234 if ready else None,
        "content_hash": "ab" * 32 if ready else None,
        "storage_key": "recordings/rec_01JQ.mp3" if ready else None,
        "staging_key": None if ready else "staging/rec_01JQ.pcm",
        "failure_reason": "decoder error" if status == "failed" else None,
        "created_at": NOW,
        "ready_at": NOW + 2 if ready else None,
        "expires_at": NOW + 30 * 86400,
        "expired_at": NOW + 30 * 86400 if status == "expired" else None,
        "deleted_at": None,
    }
    return Recording(**{**fields, **changes})


def _session(status: str = "created", **changes: Any) -> Session:
    ended = status == "ended"
    fields: dict[str, Any] = {
        "id": "sess_01JQ0000000000000000000000",
        "org_id": "org_01JQ0000000000000000000000",
        "livemode": True,
        "mode": "bidirectional_translation",
        "source_language": "en-US",
        "target_language": None,
        "provider": "twilio",
        "status": status,
        "recording_enabled": True,
        "recording_channels": "dual",
        "metadata": '{"crm_id": "42"}',
        "stream_token": None if ended else "kst_abcdefghijklmnopqrstuvwxyz012345",
        "stream_token_expires_at": None if ended else NOW + 300,
        "created_at": NOW,
        "started_at": None if status == "created" else NOW + 5,
        "ended_at": NOW + 250.4 if ended else None,
    }
    return Session(**{**fields, **changes})


def _endpoint(**changes: Any) -> WebhookEndpoint:
    fields: dict[str, Any] = {
        "id": "wh_01JQ0000000000000000000000",
        "org_id": "org_01JQ0000000000000000000000",
        "livemode": True,
        "url": "https://hooks.example.com/kallrec",
        "events": "recording.ready session.ended",
        "description": "CRM sync",
        "secret": "whsec_" + "A1b-_" * 8 + "xyz",
        "created_at": NOW,
        "deleted_at": None,
    }
    return WebhookEndpoint(**{**fields, **changes})


def _delivery(status: str) -> DeliveryRecord:
    failed = AttemptResult(1, NOW + 1, 30_000.4, None, "ReadTimeout")
    answered = AttemptResult(2, NOW + 61, 84.26, 500, "HTTP 500 (not 2xx)")
    history = {
        "pending": (failed, answered),
        "succeeded": (failed, AttemptResult(2, NOW + 61, 12.0, 204, None)),
        "failed": (failed, answered),
        "canceled": (),
    }[status]
    return DeliveryRecord(
        id="wh_del_01JQ0000000000000000000000",
        endpoint_id="wh_01JQ0000000000000000000000",
        event_id="evt_01JQ0000000000000000000000",
        event_type="recording.ready",
        status=status,
        attempts=len(history) + (status == "pending"),  # pending: one more in flight
        next_attempt_at=NOW + 361,
        created_at=NOW,
        updated_at=NOW + 61,
        history=history,
    )


# -- 1. the document and the routes agree ---------------------------------------------------------


def test_every_route_is_documented_and_nothing_else() -> None:
    routed: set[tuple[str, str]] = set()
    for route in ROUTES:
        if isinstance(route, WebSocketRoute):  # OpenAPI does not describe WebSockets
            continue
        assert isinstance(route, Route), route
        path = _route_path(route)
        for method in route.methods or ():
            if method != "HEAD" or path in HEAD_DOCUMENTED:
                routed.add((path, method.lower()))
    documented = {(path, method) for path, method, _ in _operations()}
    assert documented - routed == set(), "documented operations the server does not have"
    assert routed - documented == set(), "routes missing from the document"


def test_head_documented_only_where_the_route_answers_it() -> None:
    head_routes = {
        _route_path(r) for r in ROUTES if isinstance(r, Route) and "HEAD" in (r.methods or ())
    }
    assert head_routes >= HEAD_DOCUMENTED
    assert {path for path, method, _ in _operations() if method == "head"} == HEAD_DOCUMENTED


# -- 2. valid OpenAPI 3.1 ------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"].startswith("3.1.")
    validate(DOC, cls=OpenAPIV31SpecValidator)


def test_info_and_servers() -> None:
    assert DOC["info"]["title"] == "kallrec"
    assert DOC["info"]["version"] == "0.1.0"
    for word in ("Authorization: Bearer", "X-API-Key", "sk_test_", "Idempotency-Key", "429"):
        assert word in DOC["info"]["description"]
    assert DOC["servers"] == [{"url": "/"}]


def test_document_is_built_once() -> None:
    assert openapi_document() is openapi_document()


# -- 3. references and operation ids -------------------------------------------------------------


def test_every_ref_resolves_and_every_component_is_used() -> None:
    refs = set(_refs(DOC))
    for ref in refs:
        _resolve(ref)
    for kind, items in DOC["components"].items():
        if kind == "securitySchemes":
            continue
        for name in items:
            assert f"#/components/{kind}/{name}" in refs, f"unused component {kind}/{name}"


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for _, _, op in _operations()]
    assert len(ids) == len(set(ids))


# -- security, parameters, responses --------------------------------------------------------------


def test_security_and_scopes() -> None:
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["in"] == "header"
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert DOC["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    for path, _, op in _operations():
        if path in PUBLIC | SIGNED:
            assert op["security"] == []
            assert "x-required-scope" not in op
        else:
            assert path.startswith("/v1/")
            assert "security" not in op  # the document-wide requirement applies
            assert op["x-required-scope"] in ALL_SCOPES
            assert f"`{op['x-required-scope']}`" in op["description"]
            for status in ("401", "403", "429"):
                assert status in op["responses"], (path, status)


@pytest.mark.parametrize(
    ("path", "method", "scope"),
    [
        ("/v1/sessions", "post", "sessions:write"),
        ("/v1/sessions", "get", "sessions:read"),
        ("/v1/sessions/{session_id}", "get", "sessions:read"),
        ("/v1/sessions/{session_id}/end", "post", "sessions:write"),
        ("/v1/sessions/{session_id}/recordings", "get", "recordings:read"),
        ("/v1/recordings", "get", "recordings:read"),
        ("/v1/recordings", "post", "sessions:write"),
        ("/v1/recordings/{recording_id}", "get", "recordings:read"),
        ("/v1/recordings/{recording_id}", "delete", "recordings:delete"),
        ("/v1/recordings/{recording_id}/audio", "get", "recordings:read"),
        ("/v1/recordings/{recording_id}/audio", "head", "recordings:read"),
        ("/v1/recordings/{recording_id}/links", "post", "recordings:read"),
        ("/v1/recordings/{recording_id}/links/{link_id}", "delete", "recordings:read"),
        ("/v1/recordings/{recording_id}/peaks", "get", "recordings:read"),
        ("/v1/webhook_endpoints", "post", "webhooks:manage"),
        ("/v1/webhook_endpoints", "get", "webhooks:manage"),
        ("/v1/webhook_endpoints/{endpoint_id}", "get", "webhooks:manage"),
        ("/v1/webhook_endpoints/{endpoint_id}", "delete", "webhooks:manage"),
        ("/v1/webhook_endpoints/{endpoint_id}/deliveries", "get", "webhooks:manage"),
    ],
)
def test_scopes_match_the_spec(path: str, method: str, scope: str) -> None:
    assert DOC["paths"][path][method]["x-required-scope"] == scope


_SCOPED = [
    (path, method, op["x-required-scope"])
    for path, method, op in _operations()
    if "x-required-scope" in op
]


@pytest.mark.parametrize(("path", "method", "scope"), _SCOPED)
async def test_each_handler_enforces_the_scope_its_document_names(
    client: httpx.AsyncClient, make_caller: Any, path: str, method: str, scope: str
) -> None:
    # Routes, handlers and the document each name an operation's scope (ARCHITECTURE.md says why
    # they are not generated from one record): this keeps the handlers' checks and the document
    # from drifting apart, operation by operation.
    url = re.sub(r"\{(\w+)\}", lambda m: f"{m.group(1).split('_')[0][:3]}_unknown", path)
    others = make_caller(scopes=tuple(sorted(set(ALL_SCOPES) - {scope})))
    refused = await client.request(method, url, headers=others.headers, json={})
    assert refused.status_code == 403, (path, method, refused.text)
    if method != "head":
        assert f"'{scope}'" in refused.json()["error"]["message"]
    only = make_caller(scopes=(scope,))
    admitted = await client.request(method, url, headers=only.headers, json={})
    assert admitted.status_code != 403, (path, method, admitted.text)


def _param_names(op: dict[str, Any]) -> list[str]:
    return [_resolve(p["$ref"])["name"] for p in op.get("parameters", [])]


def test_list_and_filter_parameters() -> None:
    limit = DOC["components"]["parameters"]["Limit"]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
    listing = DOC["paths"]["/v1/recordings"]["get"]
    assert set(_param_names(listing)) == {
        "limit",
        "starting_after",
        "ending_before",
        "session_id",
        "channel",
        "status",
        "created[gte]",
        "created[lt]",
    }
    by_session = DOC["paths"]["/v1/sessions/{session_id}/recordings"]["get"]
    assert set(_param_names(by_session)) == {
        "session_id",
        "limit",
        "starting_after",
        "ending_before",
        "channel",
    }
    sessions = DOC["paths"]["/v1/sessions"]["get"]
    assert set(_param_names(sessions)) == {
        "limit",
        "starting_after",
        "ending_before",
        "status",
        "created[gte]",
        "created[lt]",
        "q",
        "carrier_id",
    }
    assert _param(sessions, "status")["schema"]["enum"] == ["created", "active", "ended"]
    endpoints = DOC["paths"]["/v1/webhook_endpoints"]["get"]
    assert set(_param_names(endpoints)) == {"limit", "starting_after", "ending_before"}
    deliveries = DOC["paths"]["/v1/webhook_endpoints/{endpoint_id}/deliveries"]["get"]
    assert set(_param_names(deliveries)) == {
        "endpoint_id",
        "limit",
        "starting_after",
        "ending_before",
        "status",
    }
    status = DOC["components"]["parameters"]["DeliveryStatusFilter"]["schema"]
    assert status["enum"] == list(DELIVERY_STATUSES)


# -- what a generator needs to make valid requests -------------------------------------------------

# Each list's cursors are ids of the objects on it.
CURSOR_PREFIXES = {
    "/v1/sessions": "sess",
    "/v1/recordings": "rec",
    "/v1/sessions/{session_id}/recordings": "rec",
    "/v1/webhook_endpoints": "wh",
    "/v1/webhook_endpoints/{endpoint_id}/deliveries": "wh_del",
}
ID_PREFIXES = ("rec", "sess", "wh", "wh_del", "evt", "req")


def _param(op: dict[str, Any], name: str) -> dict[str, Any]:
    params = [_resolve(p["$ref"]) for p in op.get("parameters", [])]
    (found,) = [p for p in params if p["name"] == name]
    return found


def _valid(schema: dict[str, Any], value: Any) -> bool:
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker).is_valid(value)


@pytest.mark.parametrize(("path", "prefix"), CURSOR_PREFIXES.items())
def test_cursors_are_ids_of_the_listed_objects(path: str, prefix: str) -> None:
    op = DOC["paths"][path]["get"]
    for name in ("starting_after", "ending_before"):
        schema = _param(op, name)["schema"]
        assert _valid(schema, ids.new_id(prefix)), (path, name)
        assert _valid(schema, ""), "an empty cursor is no cursor"
        assert all(_valid(schema, example) for example in schema["examples"])
        others = [ids.new_id(p) for p in ID_PREFIXES if p != prefix]
        for wrong in (*others, prefix + "_", ids.new_id(prefix).lower()):
            assert not _valid(schema, wrong), (path, name, wrong)
        assert "Not with" in _param(op, name)["description"]


@pytest.mark.parametrize(
    ("name", "prefix"), [("session_id", "sess"), ("recording_id", "rec"), ("endpoint_id", "wh")]
)
def test_path_ids_have_the_shape_of_the_ids_the_server_makes(name: str, prefix: str) -> None:
    parameters = DOC["components"]["parameters"].values()
    (param,) = [p for p in parameters if p["name"] == name and p["in"] == "path"]
    assert _valid(param["schema"], ids.new_id(prefix))
    assert not _valid(param["schema"], "rec_nope")


# What /v1/recordings reads as a time (200) and what it refuses (400), whatever the document says.
CREATED_READ = (
    "2026-03-01T00:00:00Z",
    "2026-03-01t10:20:30.123456789+05:30",
    "2026-03-01T10:20:30-08:00",
    "2026-03-01",
    "1772323200",
    "1772323200.25",
    "0",
    ".5",
    "9" * 400,
)
CREATED_REFUSED = ("yesterday", "", "-1", "1e9", "1.2.3", "٣", "2026-02-30", "2026-03-01T25:00:00Z")


@pytest.mark.parametrize("name", ["created[gte]", "created[lt]"])
@pytest.mark.parametrize("value", CREATED_READ + CREATED_REFUSED)
async def test_created_filters_document_what_the_server_reads(
    client: httpx.AsyncClient, caller: Caller, name: str, value: str
) -> None:
    schema = _param(DOC["paths"]["/v1/recordings"]["get"], name)["schema"]
    response = await client.get("/v1/recordings", params={name: value}, headers=caller.headers)
    expected = 200 if value in CREATED_READ else 400
    assert response.status_code == expected, response.text
    assert _valid(schema, value) == (expected == 200)
    if expected == 400:
        assert response.json()["error"]["param"] == name


async def test_created_filters_read_a_leap_second(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    # RFC 3339 allows 23:59:60 (jsonschema's checker does not, Schemathesis's does): the
    # second after 23:59:59, not a 400.
    for value in ("2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5+00:00"):
        response = await client.get(
            "/v1/recordings", params={"created[gte]": value}, headers=caller.headers
        )
        assert response.status_code == 200, response.text


def test_signed_download_file_parameters_head_and_range() -> None:
    path = DOC["paths"]["/v1/recordings/{recording_id}/download/file"]
    get, head = path["get"], path["head"]
    signed = ["recording_id", "format", "sample_rate", "expires", "signature"]
    assert _param_names(get) == [*signed, "Range"]
    assert _param_names(head) == signed
    for name in signed:
        assert _param(get, name)["required"] is True
    signature = _param(get, "signature")["schema"]
    link = signed_path(b"k" * 32, ids.new_id("rec"), "wav", 16000, 1_774_526_660)
    assert _valid(signature, link.rsplit("signature=", 1)[1])
    assert _param(get, "expires")["schema"]["maximum"] == 10**12 - 1
    assert set(get["responses"]) == {"200", "206", "403", "404", "409", "410", "416", "500", "503"}
    assert set(head["responses"]) == {"200", "403", "404", "409", "410", "500", "503"}
    assert "content" not in head["responses"]["200"]
    for response in (get["responses"]["200"], get["responses"]["206"], head["responses"]["200"]):
        accept = _resolve(response["headers"]["Accept-Ranges"]["$ref"])["schema"]
        assert accept["enum"] == ["bytes", "none"]
    assert "Content-Range" in get["responses"]["206"]["headers"]


# -- links: the ids an answer carries lead on to the operations that take them ---------------------


def _links() -> Iterator[tuple[str, str, str, str, dict[str, Any]]]:
    for path, method, op in _operations():
        for status, response in op["responses"].items():
            for name, link in response.get("links", {}).items():
                yield f"{method.upper()} {path} {status}", path, method, name, link


def _schema_at(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    """The schema of the value at a JSON pointer into instances of ``schema``."""
    for part in filter(None, pointer.split("/")):
        if "$ref" in schema:
            schema = _resolve(schema["$ref"])
        if "allOf" in schema:  # the properties of every part
            merged: dict[str, Any] = {}
            for piece in schema["allOf"]:
                piece = _resolve(piece["$ref"]) if "$ref" in piece else piece
                merged.update(piece.get("properties", {}))
            schema = {"properties": merged}
        schema = schema["items"] if part.isdigit() else schema["properties"][part]
    return _resolve(schema["$ref"]) if "$ref" in schema else schema


def test_links_target_real_operations_with_values_the_answer_has() -> None:
    by_id = {op["operationId"]: (path, op) for path, _, op in _operations()}
    links = list(_links())
    assert len(links) >= 30
    for where, path, method, name, link in links:
        target_path, target = by_id[link["operationId"]]
        assert link["description"], (where, name)
        assert link["parameters"], (where, name)
        source = DOC["paths"][path][method]
        status = where.rsplit(" ", 1)[1]
        body = source["responses"][status]["content"]["application/json"]["schema"]
        for param, expression in link["parameters"].items():
            assert param in _param_names(target), (where, name, param)
            if expression.startswith("$response.body#"):
                # The answer has the value, and it fits the parameter it is passed to.
                value_schema = _schema_at(body, expression.removeprefix("$response.body#"))
                prefix = value_schema["pattern"].removeprefix("^").split("_[")[0]
                assert _valid(_param(target, param)["schema"], ids.new_id(prefix)), (where, param)
            else:
                assert expression == f"$request.path.{param}", (where, name)
                assert param in re.findall(r"{(\w+)}", path) and param in target_path


def test_every_created_object_links_to_its_retrieval() -> None:
    created = {
        ("/v1/sessions", "post", "201"): "getSession",
        ("/v1/recordings", "post", "202"): "getRecording",
        ("/v1/webhook_endpoints", "post", "201"): "getWebhookEndpoint",
    }
    for (path, method, status), operation_id in created.items():
        links = DOC["paths"][path][method]["responses"][status]["links"]
        assert operation_id in {link["operationId"] for link in links.values()}


def test_idempotency_key_exactly_on_creating_posts_and_ending_a_session() -> None:
    with_key = {
        (path, method)
        for path, method, op in _operations()
        if "Idempotency-Key" in _param_names(op)
    }
    assert with_key == {
        ("/v1/sessions", "post"),
        ("/v1/sessions/{session_id}/end", "post"),
        ("/v1/recordings", "post"),
        ("/v1/webhook_endpoints", "post"),
    }


def test_path_parameters_match_the_templates() -> None:
    for path, _, op in _operations():
        params = [_resolve(p["$ref"]) for p in op.get("parameters", [])]
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), path


def test_every_response_has_a_request_id_and_errors_use_the_envelope() -> None:
    for path, method, op in _operations():
        for status, response in op["responses"].items():
            resolved = _resolve(response["$ref"]) if "$ref" in response else response
            assert "X-Request-ID" in resolved["headers"], (path, method, status)
            if path.startswith("/v1/") and path not in SIGNED and status != "401":
                assert "X-RateLimit-Remaining" in resolved["headers"], (path, method, status)
            if int(status) >= 400 and path.startswith("/v1/"):
                schema = resolved["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/v1/sessions", "post", {"201", "400", "401", "403", "409", "413", "429", "500"}),
        ("/v1/sessions", "get", {"200", "400", "401", "403", "429", "500"}),
        (
            "/v1/sessions/{session_id}/end",
            "post",
            {"200", "400", "401", "403", "404", "409", "413", "429", "500"},
        ),
        ("/v1/recordings", "get", {"200", "400", "401", "403", "429", "500"}),
        (
            "/v1/recordings",
            "post",
            {"202", "400", "401", "403", "404", "409", "413", "415", "422", "429", "500"},
        ),
        (
            "/v1/recordings/{recording_id}/audio",
            "get",
            {"200", "206", "304", "401", "403", "404", "409", "410", "412", "416", "429"}
            | {"500", "503"},
        ),
        (
            "/v1/recordings/{recording_id}/audio",
            "head",
            {"200", "304", "401", "403", "404", "409", "410", "412", "429", "500", "503"},
        ),
        ("/v1/webhook_endpoints", "post", {"201", "400", "401", "403", "409", "413", "429", "500"}),
        ("/v1/webhook_endpoints", "get", {"200", "400", "401", "403", "429", "500"}),
        ("/v1/webhook_endpoints/{endpoint_id}", "get", {"200", "401", "403", "404", "429", "500"}),
        (
            "/v1/webhook_endpoints/{endpoint_id}",
            "delete",
            {"200", "401", "403", "404", "429", "500"},
        ),
        (
            "/v1/webhook_endpoints/{endpoint_id}/deliveries",
            "get",
            {"200", "400", "401", "403", "404", "429", "500"},
        ),
        ("/readyz", "get", {"200", "503"}),
    ],
)
def test_statuses(path: str, method: str, statuses: set[str]) -> None:
    assert set(DOC["paths"][path][method]["responses"]) == statuses


def test_audio_responses() -> None:
    responses = DOC["paths"]["/v1/recordings/{recording_id}/audio"]["get"]["responses"]
    ok, partial = responses["200"], responses["206"]
    assert set(ok["content"]) == {"audio/mpeg"}
    assert set(partial["content"]) == {"audio/mpeg", "multipart/byteranges"}
    audio_headers = {
        "Content-Length",
        "Content-Disposition",
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
        "Cache-Control",
    }
    assert audio_headers <= set(ok["headers"])
    assert audio_headers | {"Content-Range"} <= set(partial["headers"])
    assert "content" not in responses["304"]
    unsatisfiable = _resolve(responses["416"]["$ref"])
    assert "Content-Range" in unsatisfiable["headers"]
    for status in ("409", "503"):
        assert "Retry-After" in _resolve(responses[status]["$ref"])["headers"]
    head = DOC["paths"]["/v1/recordings/{recording_id}/audio"]["head"]["responses"]["200"]
    assert "content" not in head
    assert audio_headers <= set(head["headers"])


def test_system_content_types() -> None:
    paths = DOC["paths"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert set(paths["/docs"]["get"]["responses"]["200"]["content"]) == {"text/html"}
    assert set(paths["/openapi.json"]["get"]["responses"]["200"]["content"]) == {"application/json"}


# -- 4. objects: the schemas and what the code returns ---------------------------------------------


def _properties(name: str) -> set[str]:
    return set(DOC["components"]["schemas"][name]["properties"])


@pytest.mark.parametrize("status", ["processing", "ready", "failed", "expired"])
def test_recording_schema_matches_recording_object(status: str) -> None:
    obj = recording_object(_recording(status))
    assert set(obj) == _properties("Recording")
    _check(obj, "Recording")


@pytest.mark.parametrize("status", ["created", "active", "ended"])
def test_session_schema_matches_session_object(status: str) -> None:
    obj = session_object(_session(status), "wss://kallrec.example")
    assert set(obj) == _properties("Session")
    _check(obj, "Session")
    if obj["stream"] is not None:
        assert set(obj["stream"]) == _properties("SessionStream")
    assert set(obj["recording"]) == _properties("SessionRecording")


def test_session_schema_matches_a_session_with_every_field() -> None:
    full = _session(
        "ended",
        phone_number="+14155551234",
        direction="inbound",
        routing='{"type": "twilio", "phone_number": "+14155551234", "audio": {"x": 1}}',
        carrier_ids='{"call_sid": "CA1"}',
        ai_agent='{"voice": "alloy", "tools": [{"name": "t"}]}',
        end_reason="customer_hangup",
        recording_id="rec_01JQ0000000000000000000000",
        metadata='{"crm_id": "42", "attempt": 2, "vip": true, "score": 0.5}',
    )
    mixed = _recording("ready")
    obj = session_object(full, "wss://kallrec.example", mixed)
    _check(obj, "Session")
    assert obj["recording"]["duration"] == mixed.duration
    assert set(obj["routing"]) <= _properties("Routing") | {"audio"}


def test_session_schema_allows_a_bare_session() -> None:
    bare = _session("created", metadata=None, provider=None, source_language=None)
    _check(session_object(bare, "ws://localhost:8000"), "Session")


def _all_properties(name: str) -> set[str]:
    """The properties of a schema and of every part of its ``allOf``."""
    schema = DOC["components"]["schemas"][name]
    found = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found |= set((_resolve(part["$ref"]) if "$ref" in part else part).get("properties", {}))
    return found


@pytest.mark.parametrize(
    ("events", "description"),
    [("recording.ready session.ended", "CRM sync"), (ALL_EVENTS, None)],
)
def test_webhook_endpoint_schemas_match_endpoint_object(events: str, description: str) -> None:
    endpoint = _endpoint(events=events, description=description)
    obj = endpoint_object(endpoint)
    assert set(obj) == _properties("WebhookEndpoint")
    _check(obj, "WebhookEndpoint")
    # Only the create answer has the secret, and its schema requires it.
    created = endpoint_object(endpoint, with_secret=True)
    assert set(created) == _all_properties("WebhookEndpointWithSecret")
    assert set(created) - set(obj) == {"secret"}
    _check(created, "WebhookEndpointWithSecret")
    with pytest.raises(jsonschema.ValidationError):
        _check(obj, "WebhookEndpointWithSecret")


@pytest.mark.parametrize("status", DELIVERY_STATUSES)
def test_webhook_delivery_schema_matches_delivery_object(status: str) -> None:
    obj = delivery_object(_delivery(status))
    assert set(obj) == _properties("WebhookDelivery")
    _check(obj, "WebhookDelivery")
    assert (obj["next_attempt_at"] is None) == (status != "pending")
    assert bool(obj["attempts"]) == (status != "canceled")
    for attempt in obj["attempts"]:
        assert set(attempt) == _properties("WebhookDeliveryAttempt")


def test_webhook_enums_come_from_the_code() -> None:
    schemas = DOC["components"]["schemas"]
    for name in ("WebhookEndpoint", "WebhookEndpointCreate"):
        items = schemas[name]["properties"]["enabled_events"]["items"]
        assert items["enum"] == [*SUBSCRIBABLE_EVENT_TYPES, ALL_EVENTS]
    delivery = schemas["WebhookDelivery"]["properties"]
    assert delivery["event_type"]["enum"] == list(EVENT_TYPES)
    assert delivery["status"]["enum"] == list(DELIVERY_STATUSES)


# -- 5. the error envelope -------------------------------------------------------------------------


def test_error_schema_matches_the_envelope() -> None:
    body = ApiError("x").body("req_1")
    assert set(body) == _properties("ErrorEnvelope")
    assert set(body["error"]) == _properties("Error")
    for error in (
        ApiError("x"),
        Conflict("busy", code="recording_not_ready", param="recording_id", retry_after=2),
        RateLimited("slow down", retry_after=0.2),
    ):
        _check(error.body("req_01JQ0000000000000000000000"), "ErrorEnvelope")


def test_error_types_enumerate_the_tree() -> None:
    types = set(DOC["components"]["schemas"]["Error"]["properties"]["type"]["enum"])
    assert types == {
        "api_error",
        "authentication_error",
        "permission_error",
        "invalid_request_error",
        "validation_error",
        "rate_limit_error",
    }


# -- the request bodies --------------------------------------------------------------------------


async def test_routing_and_provider_exclude_each_other(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    # What SessionCreate's `not` says, from the server; null counts as absent.
    both = {"mode": "ai_agent", "routing": {"type": "sip"}, "provider": {"type": "sip"}}
    refused = await client.post("/v1/sessions", headers=caller.headers, json=both)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "provider"
    one = {**both, "provider": None}
    created = await client.post("/v1/sessions", headers=caller.headers, json=one)
    assert created.status_code == 201, created.text


# Routing as POST /v1/sessions reads it (201) or refuses it (400 invalid_provider); null is absent.
ROUTING_READ = (
    {"type": None, "phone_number": None, "direction": None, "sip": None, "call_sid": None},
    {"sip": {"from_uri": None}},
    {"sip": {"from_uri": "tel:+14155551234"}},
    {"sip": {"from_uri": "SIPS:bob@example.com"}},
    {"sip": {"from_uri": "sip:\u00e9\u00a0x"}},  # only ASCII space and controls are refused
)
ROUTING_REFUSED = (
    {"sip": {"from_uri": "TeL:"}},
    {"sip": {"from_uri": "sip: bob"}},
    {"sip": {"from_uri": "sip:bob\x7f"}},
    {"sip": {"from_uri": "mailto:bob@example.com"}},
    {"phone_number": "+0123"},
    {"direction": "sideways"},
    {"connection_id": ""},
)


@pytest.mark.parametrize("routing", ROUTING_READ + ROUTING_REFUSED)
async def test_routing_documents_what_the_server_reads(
    client: httpx.AsyncClient, caller: Caller, routing: dict[str, Any]
) -> None:
    body = {"mode": "ai_agent", "routing": routing}
    response = await client.post("/v1/sessions", json=body, headers=caller.headers)
    expected = 201 if routing in ROUTING_READ else 400
    assert response.status_code == expected, response.text
    schema = {"$ref": "#/components/schemas/SessionCreate", "components": DOC["components"]}
    assert _valid(schema, body) == (expected == 201)


def test_session_create_schema() -> None:
    schema = DOC["components"]["schemas"]["SessionCreate"]
    assert schema["required"] == ["mode"]
    assert schema["additionalProperties"] is False
    _check({"mode": "ai_agent"}, "SessionCreate")
    _check(
        {
            "mode": "assistive_translation",
            "source_language": "en",
            "target_language": "de-DE",
            "routing": {"type": "sip", "sip": {"from_uri": "sip:alice@example.com"}},
            "recording": {"enabled": False, "channels": "dual"},
            "metadata": {"crm_id": "42", "attempt": 2, "vip": True},
            "ai_agent": {"voice": "alloy", "temperature": 0.7},
        },
        "SessionCreate",
    )
    _check({"mode": "ai_agent", "provider": {"type": "twilio", "call_sid": "CA1"}}, "SessionCreate")
    _check({"mode": "ai_agent", "provider": None, "routing": {"type": "sip"}}, "SessionCreate")
    for bad in (
        {},
        {"mode": "ai_agent", "routing": {"type": "sip"}, "provider": {"type": "sip"}},
        {"mode": "karaoke"},
        {"mode": "ai_agent", "colour": "red"},
        {"mode": "ai_agent", "provider": "sip"},  # a string is response-only
        {"mode": "ai_agent", "routing": {"type": "skype"}},
        {"mode": "ai_agent", "source_language": "english"},
        {"mode": "ai_agent", "metadata": {"k": None}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            _check(bad, "SessionCreate")


# What POST /v1/sessions accepts as a language (201) and refuses (400 invalid_language_code):
# the schema's pattern says the same, two-letter codes from ISO 639-1 included.
LANGUAGES_READ = ("de", "EN", "en-US", "pt-br", "zh-Hant", "zh-Hant-TW", "es-419", "yue", "iW")
LANGUAGES_REFUSED = ("english", "de_DE", "x", "", "en-", "en-US-x-foo", "e1", "de-DEU1", "ü")
LANGUAGES_REFUSED += ("wz", "QQ", "xx-US", "zz-Hant")


def test_language_pattern_lists_every_two_letter_code_the_server_reads() -> None:
    schema = DOC["components"]["schemas"]["SessionCreate"]["properties"]["source_language"]
    for first in string.ascii_lowercase:
        for second in string.ascii_lowercase:
            code = first + second
            for spelled in (code, code.upper(), f"{code}-US", f"{code.upper()}-Latn-419"):
                assert _valid(schema, spelled) == languages.is_language_code(spelled), spelled


@pytest.mark.parametrize("value", LANGUAGES_READ + LANGUAGES_REFUSED)
async def test_language_codes_document_what_the_server_reads(
    client: httpx.AsyncClient, caller: Caller, value: str
) -> None:
    body = {"mode": "ai_agent", "source_language": value}
    response = await client.post("/v1/sessions", json=body, headers=caller.headers)
    expected = 201 if value in LANGUAGES_READ else 400
    assert response.status_code == expected, response.text
    schema = DOC["components"]["schemas"]["SessionCreate"]["properties"]["source_language"]
    assert _valid(schema, value) == (expected == 201)
    if expected == 400:
        assert response.json()["error"]["code"] == "invalid_language_code"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (None, 200),
        ({}, 200),
        ({"reason": "customer_hangup"}, 200),
        ({"reason": "bored"}, 400),
        ({"why": "completed"}, 400),
    ],
)
async def test_end_body_schema_documents_what_the_server_reads(
    client: httpx.AsyncClient, caller: Caller, body: Any, status: int
) -> None:
    created = await client.post("/v1/sessions", headers=caller.headers, json={"mode": "ai_agent"})
    url = f"/v1/sessions/{created.json()['id']}/end"
    response = await client.post(url, headers=caller.headers, json=body)
    assert response.status_code == status, response.text
    if body is not None:
        assert _valid(_resolve("#/components/schemas/SessionEnd"), body) == (status == 200)
    _check(response.json(), "Session" if status == 200 else "ErrorEnvelope")


def test_import_body_schema() -> None:
    content = DOC["paths"]["/v1/recordings"]["post"]["requestBody"]["content"]
    schema = _resolve(content["multipart/form-data"]["schema"]["$ref"])
    assert schema["required"] == ["file"]
    assert schema["properties"]["file"]["format"] == "binary"
    assert schema["properties"]["channel"]["enum"] == ["mixed", "agent", "customer", "dual"]
    form = {"file": "…", "channel": "dual", "metadata[crm_id]": "42"}
    _check(form, "RecordingImport")
    session = ids.new_id("sess")
    _check({"file": "…", "session_id": session}, "RecordingImport")
    for bad in ({**form, "colour": "red"}, {**form, "session_id": session}):
        with pytest.raises(jsonschema.ValidationError):
            _check(bad, "RecordingImport")


async def test_import_refuses_metadata_for_an_existing_session(
    client: httpx.AsyncClient, caller: Caller, tmp_path: Path
) -> None:
    # What the body schema's dependentSchemas says, from the server.
    created = await client.post("/v1/sessions", headers=caller.headers, json={"mode": "ai_agent"})
    wav = write_wav(tmp_path / "call.wav", tone(0.5, 440))
    data = {"session_id": created.json()["id"], "metadata[crm_id]": "42"}
    refused = await import_file(client, caller, wav, data=data)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "metadata"


def test_webhook_endpoint_create_schema() -> None:
    schema = DOC["components"]["schemas"]["WebhookEndpointCreate"]
    assert schema["required"] == ["url", "enabled_events"]
    assert schema["additionalProperties"] is False
    url = "https://hooks.example.com/kallrec"
    _check({"url": url, "enabled_events": ["*"]}, "WebhookEndpointCreate")
    _check(
        {
            "url": url,
            "enabled_events": ["recording.ready", "recording.ready", "session.ended"],
            "description": None,
        },
        "WebhookEndpointCreate",
    )
    for bad in (
        {},
        {"url": url},
        {"enabled_events": ["*"]},
        {"url": url, "enabled_events": []},
        {"url": url, "enabled_events": ["recording.lost"]},
        {"url": url, "enabled_events": ["*"], "description": "x" * 1001},
        {"url": url, "enabled_events": ["*"], "secret": "whsec_mine"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            _check(bad, "WebhookEndpointCreate")


# -- what the running app answers ------------------------------------------------------------------


async def test_served_document_and_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOC
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_live_answers_match_the_schemas(
    client: httpx.AsyncClient, caller: Caller, tmp_path: Path
) -> None:
    created = await client.post("/v1/sessions", headers=caller.headers, json={"mode": "ai_agent"})
    assert created.status_code == 201
    _check(created.json(), "Session")
    _check((await client.get("/v1/sessions", headers=caller.headers)).json(), "SessionList")
    url = f"/v1/sessions/{created.json()['id']}/end"
    _check((await client.post(url, headers=caller.headers)).json(), "Session")
    invalid = await client.post("/v1/sessions", headers=caller.headers, json={})
    _check(invalid.json(), "ErrorEnvelope")
    assert invalid.json()["error"]["type"] == "validation_error"

    stereo = np.stack([tone(0.5, 440), tone(0.5, 660)], axis=1)
    wav = write_wav(tmp_path / "call.wav", stereo)
    imported = await import_file(client, caller, wav, data={"channel": "dual"})
    assert imported.status_code == 202, imported.text
    body = imported.json()
    _check(body, "ImportedRecording")
    assert len(body["related_recordings"]) == 2

    listed = await client.get("/v1/recordings", headers=caller.headers)
    _check(listed.json(), "RecordingList")

    missing = await client.get("/v1/recordings/rec_nope", headers=caller.headers)
    assert missing.status_code == 404
    _check(missing.json(), "ErrorEnvelope")
    assert missing.headers["x-request-id"] == missing.json()["error"]["request_id"]


async def test_live_webhook_answers_match_the_schemas(
    client: httpx.AsyncClient, caller: Caller, runtime: Runtime
) -> None:
    base = "/v1/webhook_endpoints"
    body = {"url": "https://hooks.example.com/kallrec", "enabled_events": ["*"]}
    created = await client.post(base, headers=caller.headers, json=body)
    assert created.status_code == 201, created.text
    _check(created.json(), "WebhookEndpointWithSecret")
    endpoint_id = created.json()["id"]

    got = await client.get(f"{base}/{endpoint_id}", headers=caller.headers)
    assert set(got.json()) == _properties("WebhookEndpoint")
    _check(got.json(), "WebhookEndpoint")
    _check((await client.get(base, headers=caller.headers)).json(), "WebhookEndpointList")

    endpoint = runtime.webhooks.get_endpoint(endpoint_id)
    assert endpoint is not None
    emit(runtime, endpoint, "recording.ready")
    deliveries = await client.get(f"{base}/{endpoint_id}/deliveries", headers=caller.headers)
    assert deliveries.status_code == 200, deliveries.text
    assert len(deliveries.json()["data"]) == 1
    _check(deliveries.json(), "WebhookDeliveryList")

    deleted = await client.delete(f"{base}/{endpoint_id}", headers=caller.headers)
    assert deleted.status_code == 200, deleted.text
    assert set(deleted.json()) == _properties("DeletedWebhookEndpoint")
    _check(deleted.json(), "DeletedWebhookEndpoint")
    gone = await client.get(f"{base}/{endpoint_id}/deliveries", headers=caller.headers)
    assert gone.status_code == 404
    _check(gone.json(), "ErrorEnvelope")


def test_import_metadata_keys_are_documented_with_the_servers_limits() -> None:
    schema = DOC["paths"]["/v1/recordings"]["post"]["requestBody"]["content"][
        "multipart/form-data"
    ]["schema"]
    schema = _resolve(schema["$ref"]) if "$ref" in schema else schema
    (pattern,) = schema["patternProperties"]
    documented = re.compile(pattern)
    assert documented.match("metadata[" + "k" * 40 + "]")
    assert not documented.match("metadata[" + "k" * 41 + "]")  # the server's 400 too
    for escaped in ('"', "\r", "\n", "]"):  # a multipart encoder would not send these as written
        assert not documented.match(f"metadata[a{escaped}b]")
