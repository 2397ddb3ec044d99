"""The hot routes (a recording and its audio) are matched before the route table; the table
still answers everything else on those paths the same way."""

from __future__ import annotations

import pytest

from kallrec.app import AUDIO_ROUTE, METADATA_ROUTE, hot_route
from tests.api.helpers import ready_recording
from tests.api.test_error_shape import assert_envelope


def _scope(method: str, path: str, root_path: str = "") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/v1/recordings/rec_1/audio", AUDIO_ROUTE),
        ("HEAD", "/v1/recordings/rec_1/audio", AUDIO_ROUTE),
        ("GET", "/v1/recordings/rec_1", METADATA_ROUTE),
        ("HEAD", "/v1/recordings/rec_1", METADATA_ROUTE),
    ],
)
def test_hot_route_matches_reads_of_a_recording(method, path, route) -> None:
    scope = _scope(method, path)
    matched = hot_route(scope)
    assert matched is not None and matched[0] is route
    assert scope["path_params"] == {"recording_id": "rec_1"}
    assert scope["route"] is route


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/recordings/rec_1"),
        ("PUT", "/v1/recordings/rec_1/audio"),
        ("GET", "/v1/recordings"),
        ("GET", "/v1/recordings/"),
        ("GET", "/v1/recordings//audio"),
        ("GET", "/v1/recordings/rec_1/download"),
        ("GET", "/v1/recordings/rec_1/audio/extra"),
        ("GET", "/v1/sessions/sess_1"),
    ],
)
def test_hot_route_leaves_everything_else_to_the_route_table(method, path) -> None:
    assert hot_route(_scope(method, path)) is None


def test_hot_route_leaves_mounted_apps_to_the_route_table() -> None:
    assert hot_route(_scope("GET", "/v1/recordings/rec_1", root_path="/api")) is None


async def test_other_methods_on_hot_paths_get_405_listing_the_allowed_ones(client, caller):
    response = await client.put("/v1/recordings/rec_1/audio", headers=caller.headers)
    assert response.status_code == 405
    assert assert_envelope(response)["code"] == "method_not_allowed"
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    response = await client.patch("/v1/recordings/rec_1", headers=caller.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}


async def test_head_of_a_recording_has_the_headers_of_its_get_and_no_body(
    client, runtime, caller, tmp_path
):
    rec = await ready_recording(client, runtime, caller, tmp_path, seconds=1.0)
    got = await client.get(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    head = await client.head(f"/v1/recordings/{rec['id']}", headers=caller.headers)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == got.headers["content-length"]
    assert int(got.headers["content-length"]) == len(got.content)


async def test_a_deleted_recording_is_not_answered_from_the_memoized_json(
    client, runtime, caller, tmp_path
):
    rec = await ready_recording(client, runtime, caller, tmp_path, seconds=1.0)
    url = f"/v1/recordings/{rec['id']}"
    assert (await client.get(url, headers=caller.headers)).status_code == 200
    assert (await client.delete(url, headers=caller.headers)).status_code == 200
    for path in (url, f"{url}/audio"):
        response = await client.get(path, headers=caller.headers)
        assert response.status_code == 404, path
