"""One error envelope everywhere (spec §5), with X-Request-ID on every response."""

from __future__ import annotations

import pytest

ENVELOPE_KEYS = {"type", "code", "message", "param", "request_id", "retry_after"}


def assert_envelope(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["request_id"] == response.headers["x-request-id"]
    if error["retry_after"] is not None:
        assert response.headers["retry-after"] == str(error["retry_after"])
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing-here", 404, "route_not_found"),
        ("GET", "/", 404, "route_not_found"),
        ("PUT", "/v1/recordings", 405, "method_not_allowed"),
        ("PATCH", "/v1/sessions/sess_1", 405, "method_not_allowed"),
        ("GET", "/v1/recordings", 401, "invalid_api_key"),
    ],
)
async def test_routing_and_auth_errors_use_the_envelope(client, method, path, status, code):
    response = await client.request(method, path)
    assert response.status_code == status
    assert assert_envelope(response)["code"] == code


async def test_405_lists_allowed_methods(client):
    response = await client.put("/v1/recordings")
    assert "POST" in response.headers["allow"]


async def test_successes_carry_a_request_id_too(client, caller):
    response = await client.get("/v1/recordings", headers=caller.headers)
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


async def test_unexpected_errors_are_generic_500s(client, caller, runtime, monkeypatch):
    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(runtime.repo, "list_recordings", explode)
    response = await client.get("/v1/recordings", headers=caller.headers)
    assert response.status_code == 500
    error = assert_envelope(response)
    assert error["type"] == "api_error"
    assert "secret internals" not in response.text


async def test_authenticated_responses_carry_rate_limit_headers(client, caller):
    response = await client.get("/v1/recordings", headers=caller.headers)
    assert int(response.headers["x-ratelimit-limit"]) > 0
    assert int(response.headers["x-ratelimit-remaining"]) >= 0
    assert int(response.headers["x-ratelimit-reset"]) > 0
    missing = await client.get("/v1/recordings/rec_nope", headers=caller.headers)
    assert "x-ratelimit-limit" in missing.headers


async def test_rate_limit_answers_429_with_retry_after(client, caller, runtime):
    from kallrec.ratelimit import RateLimiter

    runtime.limiter = RateLimiter(3)
    for _ in range(3):
        assert (await client.get("/v1/recordings", headers=caller.headers)).status_code == 200
    response = await client.get("/v1/recordings", headers=caller.headers)
    assert response.status_code == 429
    error = assert_envelope(response)
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == "rate_limit_error"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_rate_limits_are_per_key(client, caller, make_caller, runtime):
    from kallrec.ratelimit import RateLimiter

    runtime.limiter = RateLimiter(1)
    other = make_caller("acme")
    assert (await client.get("/v1/recordings", headers=caller.headers)).status_code == 200
    assert (await client.get("/v1/recordings", headers=other.headers)).status_code == 200
    assert (await client.get("/v1/recordings", headers=caller.headers)).status_code == 429
