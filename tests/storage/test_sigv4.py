"""The SigV4 presigner against two independent implementations: botocore and obstore.

moto accepts any presigned URL, so a real GET proves nothing about the signature; identical
signatures for the same inputs and time do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import boto3
import obstore
import pytest
from botocore.config import Config
from obstore.store import S3Store

from kallrec.storage import sigv4

NOW = datetime(2026, 3, 26, 11, 4, 20, tzinfo=UTC)
CREDS = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
KEY = "tenant a/recordings/org_01J/rec_01J+1 é.mp3"
OVERRIDES = {
    "response-content-disposition": 'attachment; filename="recording-sess_01J.mp3"',
    "response-content-type": "audio/mpeg",
}


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _botocore_url(endpoint: str | None, style: str, token: str | None) -> str:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDS.access_key_id,
        aws_secret_access_key=CREDS.secret_access_key,
        aws_session_token=token,
        region_name="eu-west-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": style}),
    )
    try:
        naive_now = NOW.replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive_now):
            return client.generate_presigned_url(  # type: ignore[no-any-return]
                "get_object",
                Params={
                    "Bucket": "bkt",
                    "Key": KEY,
                    "ResponseContentDisposition": OVERRIDES["response-content-disposition"],
                    "ResponseContentType": OVERRIDES["response-content-type"],
                },
                ExpiresIn=3600,
            )
    finally:
        client.close()


@pytest.mark.parametrize(
    ("endpoint", "style", "token"),
    [
        ("http://127.0.0.1:9000", "path", None),
        ("https://minio.example", "path", "session-token/with+chars="),
        (None, "virtual", None),  # AWS itself
    ],
)
def test_same_url_and_signature_as_botocore(endpoint: str | None, style: str, token: str | None):
    expected = _botocore_url(endpoint, style, token)
    origin, path = sigv4.object_url(
        endpoint=endpoint or "",
        bucket="bkt",
        key=KEY,
        region="eu-west-1",
        virtual_hosted=style == "virtual",
    )
    creds = sigv4.Credentials(CREDS.access_key_id, CREDS.secret_access_key, token or "")
    ours = sigv4.presign_get(
        origin=origin,
        path=path,
        region="eu-west-1",
        credentials=creds,
        expires=3600,
        params=OVERRIDES,
        now=NOW,
    )
    a, b = urlsplit(expected), urlsplit(ours)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert _query(expected) == _query(ours)


def test_same_signature_as_obstore_without_overrides() -> None:
    store = S3Store(
        "bkt",
        endpoint="http://127.0.0.1:9000",
        region="eu-west-1",
        access_key_id=CREDS.access_key_id,
        secret_access_key=CREDS.secret_access_key,
        client_options={"allow_http": True},
    )
    theirs = obstore.sign(store, "GET", "recordings/org_1/rec_1.mp3", timedelta(seconds=900))
    signed_at = datetime.strptime(_query(theirs)["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    origin, path = sigv4.object_url(
        endpoint="http://127.0.0.1:9000",
        bucket="bkt",
        key="recordings/org_1/rec_1.mp3",
        region="eu-west-1",
        virtual_hosted=False,
    )
    ours = sigv4.presign_get(
        origin=origin,
        path=path,
        region="eu-west-1",
        credentials=CREDS,
        expires=900,
        now=signed_at.replace(tzinfo=UTC),
    )
    assert _query(ours) == _query(theirs)


def test_any_change_changes_the_signature() -> None:
    def sign(**changes: object) -> str:
        args: dict = {
            "origin": "http://127.0.0.1:9000",
            "path": "/bkt/k.mp3",
            "region": "us-east-1",
            "credentials": CREDS,
            "expires": 60,
            "params": OVERRIDES,
            "now": NOW,
            **changes,
        }
        return _query(sigv4.presign_get(**args))["X-Amz-Signature"]

    base = sign()
    assert sign(path="/bkt/other.mp3") != base
    assert sign(expires=61) != base
    assert sign(params={**OVERRIDES, "response-content-type": "text/html"}) != base
    assert sign(now=NOW + timedelta(seconds=1)) != base


@pytest.mark.parametrize("expires", [0, 7 * 86400 + 1])
def test_expiry_bounds(expires: int) -> None:
    with pytest.raises(ValueError, match="expires"):
        sigv4.presign_get(
            origin="https://s3.example", path="/b/k", region="r", credentials=CREDS, expires=expires
        )
