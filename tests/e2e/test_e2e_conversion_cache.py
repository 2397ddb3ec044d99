"""The conversion cache's quota against `kallrec serve` (issue 11, item 5).

The attack: with only `recordings:read`, ask `/download` for every format and rate of a call.
Before, each conversion was written and kept for good (691 MB for one 2-hour call at
`wav`/48000, ~2 GB for the five rates). Now converted files stay under
KALLREC_CONVERSION_CACHE_MAX_BYTES, the scratch files of conversions included, across worker
processes; what does not fit is converted while it is sent.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import soundfile as sf

from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    auth,
    import_ready,
    speech_like,
    write_wav,
)
from tests.storage.moto_s3 import MotoS3

pytestmark = pytest.mark.e2e

FORMATS = ("wav", "ogg", "mp3")
RATES = (8000, 16000, 22050, 44100, 48000)
CALL_SECONDS = 30  # every WAV conversion together: ~7.5 MB


def _dir_bytes(root: Path) -> int:
    total = 0
    for path in root.rglob("*") if root.exists() else ():
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:  # removed while we looked
            pass
    return total


class DiskWatch:
    """Samples the bytes of converted files plus every scratch file while a test runs."""

    def __init__(self, data_dir: Path) -> None:
        self.roots = (data_dir / "audio" / "converted", data_dir / "tmp")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_dir_bytes(root) for root in self.roots))
            self._stop.wait(0.005)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _download(server, key: str, rec_id: str, fmt: str, rate: int, **headers: str):  # type: ignore[no-untyped-def]
    url = server.url(f"/v1/recordings/{rec_id}/download?format={fmt}&sample_rate={rate}")
    response = requests.get(url, headers={**auth(key), **headers}, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, (fmt, rate, response.text)
    assert response.history and response.history[0].status_code == 302
    return response


def test_every_conversion_of_a_call_stays_under_the_quota(start_server, tmp_path: Path) -> None:
    quota = 3_000_000  # a third of what every conversion together takes
    server = start_server({"KALLREC_CONVERSION_CACHE_MAX_BYTES": str(quota)}, workers=2)
    writer = server.create_key("acme")
    reader = server.create_key("acme", scopes=["recordings:read"])
    call = write_wav(tmp_path / "call.wav", speech_like(CALL_SECONDS, seed=5), 8000)
    rec = import_ready(server, writer, call)

    sent = 0
    streamed = []
    with DiskWatch(server.data_dir) as disk:
        for _round in range(2):  # twice: the second round finds some kept, others evicted
            for fmt in FORMATS:
                for rate in RATES:
                    response = _download(server, reader, rec["id"], fmt, rate)
                    sent += len(response.content)
                    if "Content-Length" in response.headers:
                        assert int(response.headers["Content-Length"]) == len(response.content)
                    if fmt != "mp3":
                        info = sf.info(io.BytesIO(response.content))
                        assert info.samplerate == rate and abs(info.duration - CALL_SECONDS) < 0.3
                    if response.headers.get("Accept-Ranges") == "none":
                        streamed.append((fmt, rate))

    assert sent > 3 * quota
    assert disk.peak <= quota, f"converted files and scratch reached {disk.peak} bytes"
    assert ("wav", 48000) in streamed or ("wav", 44100) in streamed  # some did not fit
    converted = server.data_dir / "audio" / "converted"
    assert 0 < _dir_bytes(converted) <= quota


@pytest.fixture
def moto() -> Iterator[MotoS3]:
    server = MotoS3().start()
    try:
        yield server
    finally:
        server.stop()


def test_a_kept_conversion_being_downloaded_is_not_evicted_from_s3(
    start_server, moto: MotoS3, tmp_path: Path
) -> None:
    """On S3 a download reads the object a chunk at a time for as long as it lasts: evicting it
    meanwhile would cut the download. A conversion that needs its room is streamed instead."""
    seconds = 90  # WAV at 48 kHz: 8.6 MB, several S3 chunks and more than socket buffers hold
    wav48 = 44 + 2 * 48000 * seconds  # about: the MP3's frames add a few ms
    bucket = moto.create_bucket()
    server = start_server(
        {
            **moto.env(f"s3://{bucket}/kallrec"),
            "KALLREC_CONVERSION_CACHE_MAX_BYTES": str(wav48 + 100_000),
            "KALLREC_DELETE_GRACE_SECONDS": "0",  # only a download in progress protects a file
        }
    )
    key = server.create_key("acme", scopes=["recordings:read", "sessions:write"])
    rec = import_ready(server, key, write_wav(tmp_path / "c.wav", speech_like(seconds), 8000))
    kept_key = f"kallrec/converted/{rec['id']}/48000.wav"

    first = _download(server, key, rec["id"], "wav", 48000)
    assert kept_key in moto.keys(bucket)
    link = first.history[0].headers["Location"]

    # A client starts the kept file and stops reading after 64 KiB.
    slow = requests.get(link, stream=True, timeout=HTTP_TIMEOUT)  # absolute (issue 12)
    assert slow.status_code == 200 and slow.headers["Accept-Ranges"] == "bytes"
    start = slow.raw.read(65536)

    with DiskWatch(server.data_dir) as disk:
        other = _download(server, key, rec["id"], "wav", 44100)  # needs the 48 kHz file's room
    # Streamed from ranged reads of the recording: not even a copy of its MP3 in scratch.
    assert disk.peak == 0
    assert other.headers["Accept-Ranges"] == "none"  # streamed, not kept
    assert int(other.headers["Content-Length"]) == len(other.content)
    assert set(moto.keys(bucket)) >= {kept_key}
    assert not any(k.endswith("/44100.wav") for k in moto.keys(bucket))

    rest = slow.raw.read()
    slow.close()
    assert start + rest == first.content  # the slow download was not cut

    # Nobody reads it now: the next conversion that needs its room evicts it.
    again = _download(server, key, rec["id"], "wav", 44100)
    assert again.headers["Accept-Ranges"] == "bytes"
    assert again.content == other.content
    keys = moto.keys(bucket)
    assert kept_key not in keys and any(k.endswith("/44100.wav") for k in keys)
