"""Numbers no int() should see, on the download routes of `kallrec serve` (issue 11, item 7).

A 5,000-digit `sample_rate` or `expires` was a 500: Python refuses to parse integers of more than
4,300 digits. Now `/download` answers 400 naming the parameter, and the key-less signed link
403 `invalid_signature` naming it (a link that was altered), before anything is looked up.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    assert_error,
    auth,
    import_ready,
    speech_like,
    write_wav,
)

pytestmark = pytest.mark.e2e

HUGE = "9" * 5000


@pytest.fixture(scope="module")
def call(server, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    key = server.create_key("acme")
    wav = write_wav(tmp_path_factory.mktemp("in") / "call.wav", speech_like(3), 8000)
    return key, import_ready(server, key, wav)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"format": "wav", "sample_rate": HUGE}, "sample_rate"),
        ({"format": "wav", "sample_rate": "-" + HUGE}, "sample_rate"),
        ({"format": "wav", "sample_rate": "²"}, "sample_rate"),
        ({"format": HUGE}, "format"),
    ],
)
def test_download_answers_400_naming_the_parameter(server, call, query, param) -> None:  # type: ignore[no-untyped-def]
    key, rec = call
    url = server.url(f"/v1/recordings/{rec['id']}/download?{urlencode(query)}")
    response = requests.get(url, headers=auth(key), allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert_error(response, 400, "invalid_request", error_type="invalid_request_error", param=param)


@pytest.mark.parametrize("param", ["expires", "sample_rate"])
def test_the_signed_link_answers_403_naming_the_parameter(server, call, param: str) -> None:  # type: ignore[no-untyped-def]
    key, rec = call
    url = server.url(f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000")
    redirect = requests.get(url, headers=auth(key), allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert redirect.status_code == 302
    parts = urlsplit(redirect.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {param: HUGE}
    response = requests.get(server.url(f"{parts.path}?{urlencode(query)}"), timeout=HTTP_TIMEOUT)
    assert_error(response, 403, "invalid_signature", error_type="permission_error", param=param)
    # The untouched link (absolute: issue 12) still works.
    assert requests.get(redirect.headers["Location"], timeout=HTTP_TIMEOUT).ok


def test_a_forged_link_for_an_unknown_recording_is_403_too(server) -> None:  # type: ignore[no-untyped-def]
    query = urlencode(
        {"format": "wav", "sample_rate": "8000", "expires": HUGE, "signature": "x" * 43}
    )
    response = requests.get(
        server.url(f"/v1/recordings/rec_nope/download/file?{query}"), timeout=HTTP_TIMEOUT
    )
    assert_error(response, 403, "invalid_signature", param="expires")
