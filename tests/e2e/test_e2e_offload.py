"""Offload mode (``KALLREC_OFFLOAD=nginx``) behind a real nginx running deploy/nginx/kallrec.conf.

Two kallrec servers share one data directory: one in direct mode, one in offload mode with nginx
in front. Every request of the battery goes to both, and the answers must be the same: status,
body and the headers of spec §1/§1.1/§1.2 (Date, Server, Connection, the multipart boundary, the
request id and the rate-limit counters are the only things allowed to differ).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    Server,
    free_port,
    last_lines,
    parse_byteranges,
    sha256,
    speech_like,
    write_wav,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "kallrec.conf"
# Values in the documented config that a deployment (here: this test) replaces.
DOC_UPSTREAM = "server 127.0.0.1:8000;"
DOC_LISTEN = "listen 80;"
DOC_AUDIO = "/var/lib/kallrec/audio/"

# Never compared: hop-by-hop or per-server. Compared loosely: per-request or per-process values.
IGNORED = {"date", "server", "connection", "keep-alive"}
LOOSE = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}
SLOW_JOBS = {"KALLREC_JOB_POLL_SECONDS": "3600"}  # a --no-wait import stays `processing`


def _find_nginx() -> str | None:
    candidates = (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx")
    return next((p for p in candidates if p and os.access(p, os.X_OK)), None)


def _nginx_binary() -> str | None:
    """nginx, installed from the Debian archive first when missing and we are allowed to."""
    if (found := _find_nginx()) or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "nginx"]
    for attempt in ([install], [["apt-get", "update", "-q"], install]):
        for cmd in attempt:
            subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=False)
        if found := _find_nginx():
            return found
    return None


def render_conf(prefix: Path, listen_port: int, kallrec_port: int, audio_dir: Path) -> str:
    """A complete nginx.conf around the documented include, with every path inside `prefix`."""
    site = NGINX_CONF.read_text()
    for doc in (DOC_UPSTREAM, DOC_LISTEN, DOC_AUDIO):
        assert doc in site, f"{NGINX_CONF} no longer contains {doc!r}"
    site = (
        site.replace(DOC_UPSTREAM, f"server 127.0.0.1:{kallrec_port};")
        .replace(DOC_LISTEN, f"listen 127.0.0.1:{listen_port};")
        .replace(DOC_AUDIO, f"{audio_dir.resolve()}/")
    )
    temp = "\n".join(
        f"    {kind}_temp_path {prefix}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root the workers would switch to `nobody`, who cannot read pytest's 0700 tmp dirs.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n    access_log off;\n{temp}\n    default_type application/octet-stream;\n"
        f"{site}\n}}\n"
    )


@contextlib.contextmanager
def running_nginx(binary: str, prefix: Path, kallrec_port: int, audio_dir: Path) -> Iterator[str]:
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(render_conf(prefix, port, kallrec_port, audio_dir))
    error_log = prefix / "error.log"
    cmd = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(error_log)]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, error_log.read_text(errors="replace")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- the two deployments -------------------------------------------------------------------------


class Pair:
    """The same data directory served directly and through nginx in offload mode."""

    def __init__(self, direct: Server, offload: Server, nginx_url: str) -> None:
        self.direct, self.offload, self.nginx_url = direct, offload, nginx_url
        self.keys: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.body = b""

    def get(self, method: str, path: str, headers: dict[str, str]) -> tuple[Any, Any]:
        a = requests.request(method, self.direct.url(path), headers=headers, timeout=HTTP_TIMEOUT)
        b = requests.request(method, self.nginx_url + path, headers=headers, timeout=HTTP_TIMEOUT)
        return a, b


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    binary = _nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed and cannot be installed here")
    base = tmp_path_factory.mktemp("offload")
    factory = ServerFactory(base)
    try:
        direct = factory(SLOW_JOBS, workers=1, start=False, name="direct")
        ids, keys = {}, {}
        keys["acme"] = direct.create_key("acme")
        keys["no_scope"] = direct.create_key("acme", scopes=["sessions:read"])
        keys["initech"] = direct.create_key("initech")
        wav = write_wav(base / "call.wav", speech_like(60.0, seed=4), 8000)
        ids["call"] = last_lines(direct.cli("import", str(wav), "--org", "acme").stdout)[-1]
        ids["expired"] = last_lines(direct.cli("import", str(wav), "--org", "initech").stdout)[-1]
        direct.cli("orgs", "update", "initech", "--retention-days", "1")
        before = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert "Expired 1 recording" in direct.cli("purge", "--before", before).stdout
        direct.start()
        offload = factory(
            {**SLOW_JOBS, "KALLREC_OFFLOAD": "nginx"},
            data_dir=direct.data_dir,
            workers=1,
            name="offload",
        )
        # Queued once both job runners made their first poll: it stays `processing`.
        time.sleep(0.5)
        ids["pending"] = last_lines(
            direct.cli("import", str(wav), "--org", "acme", "--no-wait").stdout
        )[-1]
        with running_nginx(binary, base / "nginx", offload.port, direct.data_dir / "audio") as url:
            p = Pair(direct, offload, url)
            p.keys, p.ids = keys, ids
            r = requests.get(
                direct.audio_url(ids["call"]), headers=p_auth(keys["acme"]), timeout=HTTP_TIMEOUT
            )
            assert r.status_code == 200, r.text
            p.body = r.content
            yield p
    finally:
        factory.close()


def p_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- comparing two answers -----------------------------------------------------------------------


def _headers(r: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers.items() if k.lower() not in IGNORED}


def _normalise_body(r: requests.Response) -> Any:
    ctype = r.headers.get("content-type", "")
    if not r.content:  # HEAD, 304
        return b""
    if ctype.startswith("multipart/byteranges"):
        return list(parse_byteranges(ctype, r.content))
    if ctype.startswith("application/json"):
        body = json.loads(r.content)
        assert body["error"]["request_id"] == r.headers["x-request-id"], body
        body["error"]["request_id"] = "req_*"
        return body
    return sha256(r.content), len(r.content)


def assert_same(direct: requests.Response, offload: requests.Response) -> None:
    assert offload.status_code == direct.status_code, (offload.status_code, offload.text[:300])
    a, b = _headers(direct), _headers(offload)
    assert set(a) == set(b), (sorted(a), sorted(b))
    for name in a:
        if name in LOOSE:
            continue
        if name == "content-type" and a[name].startswith("multipart/byteranges"):
            assert b[name].startswith("multipart/byteranges; boundary="), b[name]
            continue
        assert b[name] == a[name], (name, a[name], b[name])
    for r in (direct, offload):
        assert r.headers["x-request-id"].startswith("req_"), r.headers
        if "x-ratelimit-remaining" in r.headers:
            assert r.headers["x-ratelimit-remaining"].isdigit(), r.headers
            assert 0 < int(r.headers["x-ratelimit-reset"]) - time.time() <= 61, r.headers
    assert _normalise_body(offload) == _normalise_body(direct)


# -- the battery ---------------------------------------------------------------------------------

ETAG = "{etag}"  # replaced by the recording's real ETag
LAST_MODIFIED = "{last_modified}"

CASES: list[tuple[str, str, str, dict[str, str], int]] = [
    # (name, method, which recording, headers, expected status)
    ("full", "GET", "call", {}, 200),
    ("head", "HEAD", "call", {}, 200),
    ("range_first_100", "GET", "call", {"Range": "bytes=0-99"}, 206),
    ("range_middle", "GET", "call", {"Range": "bytes=50000-115535"}, 206),
    ("range_open_ended", "GET", "call", {"Range": "bytes=12345-"}, 206),
    ("range_browser_first", "GET", "call", {"Range": "bytes=0-"}, 206),
    ("range_suffix", "GET", "call", {"Range": "bytes=-500"}, 206),
    ("range_past_the_end_clamped", "GET", "call", {"Range": "bytes=100-99999999999"}, 206),
    ("range_with_spaces", "GET", "call", {"Range": "bytes= 10-20"}, 206),
    ("range_uppercase_unit", "GET", "call", {"Range": "BYTES=10-20"}, 206),
    ("multi_range", "GET", "call", {"Range": "bytes=0-99,1000-1099,-50"}, 206),
    ("overlapping_ranges_merged", "GET", "call", {"Range": "bytes=0-5,3-10"}, 206),
    ("unsatisfiable", "GET", "call", {"Range": "bytes=99999999-"}, 416),
    ("garbage_range", "GET", "call", {"Range": "bytes=abc"}, 200),
    ("other_unit", "GET", "call", {"Range": "items=0-5"}, 200),
    ("reversed_range", "GET", "call", {"Range": "bytes=20-10"}, 200),
    ("if_none_match_current", "GET", "call", {"If-None-Match": ETAG}, 304),
    ("if_none_match_star", "GET", "call", {"If-None-Match": "*"}, 304),
    ("if_none_match_other", "GET", "call", {"If-None-Match": '"nope"'}, 200),
    ("head_if_none_match", "HEAD", "call", {"If-None-Match": ETAG}, 304),
    ("if_modified_since_current", "GET", "call", {"If-Modified-Since": LAST_MODIFIED}, 304),
    (
        "if_modified_since_old",
        "GET",
        "call",
        {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        200,
    ),
    (
        "if_none_match_other_beats_ims",
        "GET",
        "call",
        {"If-None-Match": '"nope"', "If-Modified-Since": LAST_MODIFIED},
        200,
    ),
    ("if_range_current_etag", "GET", "call", {"Range": "bytes=100-", "If-Range": ETAG}, 206),
    ("if_range_stale_etag", "GET", "call", {"Range": "bytes=100-", "If-Range": '"old"'}, 200),
    ("if_range_weak_etag", "GET", "call", {"Range": "bytes=100-", "If-Range": "W/" + ETAG}, 200),
    ("if_range_date", "GET", "call", {"Range": "bytes=0-9", "If-Range": LAST_MODIFIED}, 206),
    (
        "if_range_other_date",
        "GET",
        "call",
        {"Range": "bytes=0-9", "If-Range": "Sat, 01 Jan 2000 00:00:00 GMT"},
        200,
    ),
    ("if_match_mismatch", "GET", "call", {"If-Match": '"nope"'}, 412),
    ("if_match_current", "GET", "call", {"If-Match": ETAG}, 200),
    ("if_match_current_range", "GET", "call", {"If-Match": ETAG, "Range": "bytes=5-9"}, 206),
    (
        "if_unmodified_since_past",
        "GET",
        "call",
        {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"},
        412,
    ),
    (
        "if_unmodified_since_future",
        "GET",
        "call",
        {"If-Unmodified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
        200,
    ),
    ("no_key_401", "GET", "call", {"Authorization": ""}, 401),
    ("bad_key_401", "GET", "call", {"Authorization": "Bearer sk_live_nope"}, 401),
    ("head_bad_key_401", "HEAD", "call", {"Authorization": "Bearer sk_live_nope"}, 401),
    ("missing_scope_403", "GET", "call", {"key": "no_scope"}, 403),
    ("unknown_recording_404", "GET", "rec_00000000000000000000000000", {}, 404),
    ("other_org_404", "GET", "call", {"key": "initech"}, 404),
    ("processing_409", "GET", "pending", {}, 409),
    ("expired_410", "GET", "expired", {"key": "initech"}, 410),
]


@pytest.mark.parametrize(
    ("method", "which", "extra", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_offload_answers_like_direct_mode(
    pair: Pair, method: str, which: str, extra: dict[str, str], status: int
) -> None:
    meta = requests.get(
        pair.direct.audio_url(pair.ids["call"]),
        headers={**p_auth(pair.keys["acme"]), "Range": "bytes=0-0"},
        timeout=HTTP_TIMEOUT,
    )
    values = {"etag": meta.headers["etag"], "last_modified": meta.headers["last-modified"]}
    headers = p_auth(pair.keys[extra.get("key", "acme")])
    for name, value in extra.items():
        if name == "key":
            continue
        if name == "Authorization" and not value:
            headers.pop("Authorization")
            continue
        headers[name] = value.replace(ETAG, values["etag"]).replace(
            LAST_MODIFIED, values["last_modified"]
        )
    rec_id = pair.ids.get(which, which)
    direct, offload = pair.get(method, f"/v1/recordings/{rec_id}/audio", headers)
    assert direct.status_code == status, (direct.status_code, direct.text[:300])
    assert_same(direct, offload)
    assert offload.headers["x-content-type-options"] == "nosniff"
    if status == 200 and method == "GET":
        assert offload.content == pair.body


def test_offload_server_hands_simple_requests_to_nginx(pair: Pair) -> None:
    """Straight at the offload-mode kallrec: an empty answer that names the internal location."""
    url = pair.offload.audio_url(pair.ids["call"])
    key = p_auth(pair.keys["acme"])

    def accel(**headers: str) -> str | None:
        r = requests.get(url, headers={**key, **headers}, timeout=HTTP_TIMEOUT)
        if "x-accel-redirect" in r.headers:
            assert r.status_code == 200, r.text
            assert r.content == b"" and r.headers["content-length"] == "0"
        else:
            assert r.status_code in (200, 206) and r.content, r.status_code
        return r.headers.get("x-accel-redirect")

    full = accel()
    assert full is not None and re.fullmatch(
        rf"/_kallrec_internal/full/recordings/[^/]+/{pair.ids['call']}\.mp3", full
    ), full
    ranged = accel(Range="bytes=100-")
    assert ranged == full.replace("/full/", "/range/")
    assert accel(Range="bytes=0-1,5-6") is None  # multipart: served by kallrec itself
    assert accel(Range="bytes=abc") == full  # ignored Range: the whole file
    assert accel(**{"If-Match": "*"}) is None  # nginx would judge If-Match on its own
    assert accel(Range="bytes=100-", **{"If-Range": '"stale"'}) == full


def test_internal_location_is_not_reachable_from_outside(pair: Pair) -> None:
    (stored,) = (pair.direct.data_dir / "audio").glob(f"recordings/*/{pair.ids['call']}.mp3")
    relative = stored.relative_to(pair.direct.data_dir / "audio").as_posix()
    for variant in ("full", "range"):
        r = requests.get(
            f"{pair.nginx_url}/_kallrec_internal/{variant}/{relative}", timeout=HTTP_TIMEOUT
        )
        assert r.status_code != 200 and r.content != pair.body


@pytest.mark.parametrize(
    ("method", "extra", "status"),
    [
        pytest.param("GET", {}, 200, id="full"),
        pytest.param("GET", {"Range": "bytes=100-"}, 206, id="seek"),
        pytest.param("GET", {"Range": "bytes=0-9,20-29"}, 206, id="multipart"),
        pytest.param("HEAD", {}, 200, id="head"),
    ],
)
def test_a_playback_link_through_nginx_answers_like_direct_mode(
    pair: Pair, method: str, extra: dict[str, str], status: int
) -> None:
    """A link (issue 16) is /audio with another authorization: nginx serves its bytes in offload
    mode, with the link's CORS headers and disposition."""
    made = requests.post(
        pair.direct.url(f"/v1/recordings/{pair.ids['call']}/links"),
        headers=p_auth(pair.keys["acme"]),
        json={"disposition": "attachment"},
        timeout=HTTP_TIMEOUT,
    )
    assert made.status_code == 201, made.text
    path = made.json()["url"].removeprefix(pair.direct.base_url)
    direct, offload = pair.get(method, path, {"Origin": "http://elsewhere.test", **extra})
    assert direct.status_code == status, (direct.status_code, direct.text[:300])
    assert_same(direct, offload)
    assert offload.headers["access-control-allow-origin"] == "*"
    assert offload.headers["content-disposition"].startswith("attachment; filename=")
    if status == 200 and method == "GET":
        assert offload.content == pair.body
