"""Downloads from a real `kallrec serve`, through a proxy that cuts, resets and stalls."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from kallrec.client import APIConnectionError, AsyncKallrec, Kallrec
from tests.client.conftest import BigRecording, Server, fast_retry
from tests.client.faultproxy import Fault, FaultProxy


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def ranges(proxy: FaultProxy) -> list[str | None]:
    return [e.headers.get("range") for e in proxy.requests()]


def test_cut_mid_body_resumes_with_only_the_missing_bytes(
    server: Server, big_recording: BigRecording, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Fault("cut", after=1_000_000))
    with Kallrec(server.key, base_url=proxy.url, retry=fast_retry()) as client:
        result = client.recordings.download(big_recording.id, tmp_path / "a.mp3")
    assert (tmp_path / "a.mp3").read_bytes() == big_recording.body
    assert result.sha256 == big_recording.sha256
    gets = proxy.requests()
    assert [g.headers.get("range") for g in gets] == [None, "bytes=1000000-"]
    assert gets[1].headers["if-range"] == big_recording.etag
    assert gets[1].status == 206
    assert sum(g.body_bytes for g in gets) == len(big_recording.body)
    assert result.bytes_transferred == len(big_recording.body)
    assert listing(tmp_path) == ["a.mp3"]


async def test_resets_and_cuts_in_a_row_async(
    server: Server, big_recording: BigRecording, proxy: FaultProxy, tmp_path: Path
) -> None:
    # More faults than max_retries: every attempt makes progress, so the count starts over.
    proxy.add(
        Fault("reset", after=700_000),
        Fault("cut", after=300_000),
        Fault("reset", after=1),
        Fault("cut", after=900_000),
        Fault("reset", after=400_000),
    )
    async with AsyncKallrec(
        server.key, base_url=proxy.url, retry=fast_retry(max_retries=2)
    ) as client:
        result = await client.recordings.download(big_recording.id, directory=tmp_path)
    expected_name = f"recording-{big_recording.session_id}.mp3"
    assert result.path == tmp_path / expected_name
    assert result.path.read_bytes() == big_recording.body
    gets = proxy.requests()
    assert len(gets) == 6
    starts = [int(g.headers["range"][6:-1]) for g in gets[1:]]
    assert starts == sorted(starts) and starts[0] > 0
    assert all(g.headers["if-range"] == big_recording.etag for g in gets[1:])
    # An RST may destroy bytes in flight, never more than what reached the socket.
    assert len(big_recording.body) <= sum(g.body_bytes for g in gets)
    assert listing(tmp_path) == [expected_name]


def test_stall_is_detected_by_the_read_timeout_and_resumed(
    server: Server, big_recording: BigRecording, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Fault("stall", after=1_500_000, seconds=3))
    with Kallrec(
        server.key,
        base_url=proxy.url,
        retry=fast_retry(),
        timeout=httpx.Timeout(0.5, connect=2),
    ) as client:
        result = client.recordings.download(big_recording.id, tmp_path / "s.mp3")
    assert (tmp_path / "s.mp3").read_bytes() == big_recording.body
    assert result.status == "downloaded"
    assert ranges(proxy) == [None, "bytes=1500000-"]


def test_failed_run_leaves_no_final_file_and_the_next_run_resumes(
    server: Server, big_recording: BigRecording, proxy: FaultProxy, tmp_path: Path
) -> None:
    target = tmp_path / "call.mp3"
    proxy.add(Fault("cut", after=2_000_000))
    client = Kallrec(server.key, base_url=proxy.url, retry=fast_retry(max_retries=0))
    with client, pytest.raises(APIConnectionError):
        client.recordings.download(big_recording.id, target)
    assert not target.exists()
    part = tmp_path / "call.mp3.part"
    assert part.read_bytes() == big_recording.body[:2_000_000]
    sidecar = json.loads((tmp_path / "call.mp3.part.json").read_text())
    assert sidecar["etag"] == big_recording.etag

    proxy.clear()
    with Kallrec(server.key, base_url=proxy.url, retry=fast_retry()) as client:
        result = client.recordings.download(big_recording.id, target)
    assert result.status == "resumed"
    assert result.resumed_from == 2_000_000
    assert result.bytes_transferred == len(big_recording.body) - 2_000_000
    assert ranges(proxy) == ["bytes=2000000-"]
    assert proxy.requests()[0].body_bytes == len(big_recording.body) - 2_000_000
    assert target.read_bytes() == big_recording.body
    assert listing(tmp_path) == ["call.mp3"]

    proxy.clear()
    with Kallrec(server.key, base_url=proxy.url, retry=fast_retry()) as client:
        again = client.recordings.download(big_recording.id, target)
    assert again.status == "skipped"
    assert proxy.requests() == []  # only the HEAD


def test_part_of_another_version_is_started_over(
    server: Server, big_recording: BigRecording, proxy: FaultProxy, tmp_path: Path
) -> None:
    """A .part whose sidecar names another ETag holds other bytes: never splice them."""
    target = tmp_path / "call.mp3"
    (tmp_path / "call.mp3.part").write_bytes(b"\xff" * 100_000)
    old = '"' + hashlib.sha256(b"older version").hexdigest() + '"'
    (tmp_path / "call.mp3.part.json").write_text(
        json.dumps({"version": 1, "recording_id": big_recording.id, "etag": old, "size": None})
    )
    with Kallrec(server.key, base_url=proxy.url, retry=fast_retry()) as client:
        result = client.recordings.download(big_recording.id, target)
    assert result.status == "downloaded"
    assert ranges(proxy) == [None]
    assert target.read_bytes() == big_recording.body


def test_if_range_with_a_stale_validator_gets_the_whole_file(
    server: Server, big_recording: BigRecording
) -> None:
    """The server half of the restart rule: If-Range that does not match → full 200."""
    headers = {
        "Authorization": f"Bearer {server.key}",
        "Range": "bytes=100-",
        "If-Range": '"' + "0" * 64 + '"',
    }
    response = httpx.get(
        f"{server.base_url}/v1/recordings/{big_recording.id}/audio", headers=headers
    )
    assert response.status_code == 200
    assert response.content == big_recording.body
