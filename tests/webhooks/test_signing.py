"""Webhook signatures: the wire format, and a receiver's check (round trip, tampering, age)."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from kallrec.webhooks import InvalidSignature, signature_header, verify_signature
from kallrec.webhooks.signing import compute_signature, new_secret

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_1","type":"recording.ready","data":{"id":"rec_1"}}'
T = 1_774_523_060


def test_format_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, BODY, T) == f"t={T},v1={expected}"
    assert compute_signature(SECRET, T, BODY.decode()) == expected


def test_round_trip_returns_the_timestamp() -> None:
    header = signature_header(SECRET, BODY)
    assert abs(verify_signature(SECRET, header, BODY) - time.time()) < 5  # signed now
    assert verify_signature(SECRET, signature_header(SECRET, BODY, T), BODY, now=T + 10) == T


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        ("whsec_other", BODY),
        (SECRET, BODY.replace(b"rec_1", b"rec_2")),
        (SECRET, BODY + b" "),  # re-serialised JSON is a different body
    ],
    ids=["wrong-secret", "tampered-body", "whitespace"],
)
def test_tampering_is_rejected(secret: str, body: bytes) -> None:
    header = signature_header(SECRET, BODY, T)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_signature(secret, header, body, now=T)


def test_tampered_timestamp_is_rejected() -> None:
    signature = compute_signature(SECRET, T, BODY)
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, f"t={T + 1},v1={signature}", BODY, now=T)


@pytest.mark.parametrize("offset", [301, -301, 86400])
def test_outside_tolerance_is_rejected(offset: int) -> None:
    header = signature_header(SECRET, BODY, T)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_signature(SECRET, header, BODY, now=T + offset)
    assert verify_signature(SECRET, header, BODY, tolerance=0, now=T + offset) == T


def test_edge_of_tolerance_is_accepted() -> None:
    assert verify_signature(SECRET, signature_header(SECRET, BODY, T), BODY, now=T + 300) == T


@pytest.mark.parametrize(
    "header",
    [None, "", "garbage", f"t={T}", "v1=abc", f"t=soon,v1={'0' * 64}", f"t={T},v1=é"],
)
def test_malformed_headers_are_rejected(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, header, BODY, now=T)


def test_any_matching_v1_is_enough() -> None:
    good = compute_signature(SECRET, T, BODY)
    header = f"t={T}, v1={'0' * 64}, v1={good}, v0=legacy"
    assert verify_signature(SECRET, header, BODY, now=T) == T


def test_secrets_are_prefixed_and_random() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and len(a) >= 6 + 43
    assert a != b
