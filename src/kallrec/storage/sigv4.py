"""AWS Signature Version 4 query-string presigning of S3 GETs (no SDK needed).

obstore signs URLs too, but it cannot sign extra query parameters, and a recording's URL must carry
``response-content-disposition`` (the download filename) and ``response-content-type``: S3 refuses
any unsigned parameter, so they have to be part of the signature. boto3 could do it but is a heavy
dependency for ~60 lines of a published algorithm; the tests check this module against botocore.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""


def _encode(value: str, safe: str = "") -> str:
    # SigV4's URI encoding: every byte but A-Z a-z 0-9 - _ . ~ is %XX with upper-case hex.
    return quote(value, safe=safe + "-_.~")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def object_url(
    *, endpoint: str, bucket: str, key: str, region: str, virtual_hosted: bool
) -> tuple[str, str]:
    """(scheme://host[:port], path) of an object: path-style or virtual-hosted-style."""
    if not endpoint:
        endpoint = f"https://s3.{region}.amazonaws.com"
    parts = urlsplit(endpoint)
    base_path = parts.path.rstrip("/")
    if virtual_hosted:
        origin = f"{parts.scheme}://{bucket}.{parts.netloc}"
        path = f"{base_path}/{key}"
    else:
        origin = f"{parts.scheme}://{parts.netloc}"
        path = f"{base_path}/{bucket}/{key}"
    return origin, path


def presign_get(
    *,
    origin: str,
    path: str,
    region: str,
    credentials: Credentials,
    expires: int,
    params: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """A URL that lets its holder GET ``origin + path`` for ``expires`` seconds.

    ``params`` (e.g. ``response-content-disposition``) are signed with the rest.
    """
    if not 1 <= expires <= MAX_EXPIRES:
        raise ValueError(f"expires must be between 1 and {MAX_EXPIRES} seconds, not {expires}")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{now:%Y%m%d}/{region}/s3/aws4_request"
    query = {
        **(params or {}),
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{credentials.access_key_id}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    if credentials.session_token:
        query["X-Amz-Security-Token"] = credentials.session_token
    canonical_query = "&".join(
        f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items(), key=lambda kv: kv[0])
    )
    canonical_path = _encode(path, safe="/")
    host = urlsplit(origin).netloc
    canonical_request = "\n".join(
        ["GET", canonical_path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode(), f"{now:%Y%m%d}")
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{origin}{canonical_path}?{canonical_query}&X-Amz-Signature={signature}"
