from __future__ import annotations

import hashlib
import time

import pytest
from aiosipua import SipRequest

from kallrec.config import SipCredential
from kallrec.sip import digest
from kallrec.sip.digest import DigestGuard

PBX = SipCredential("acme", True, "pbx1", "s3cret")
URI = "sip:sess_01ABC@kallrec.example"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def challenge_params(guard: DigestGuard) -> dict[str, str]:
    header = guard.challenge()
    assert header.startswith("Digest ")
    return {
        k.strip(): v.strip().strip('"')
        for k, v in (part.split("=", 1) for part in header[7:].split(","))
    }


def request_with(authorization: str | None, method: str = "INVITE") -> SipRequest:
    request = SipRequest(method=method, uri=URI)
    if authorization is not None:
        request.headers.set_single("Authorization", authorization)
    return request


def answer(
    guard: DigestGuard, password: str = "s3cret", *, qop: bool = True, uri: str = URI
) -> str:
    """The Authorization a client computes (RFC 2617/7616, by hand here)."""
    nonce = challenge_params(guard)["nonce"]
    ha1 = md5(f"pbx1:kallrec:{password}")
    ha2 = md5(f"INVITE:{uri}")
    if qop:
        response = md5(f"{ha1}:{nonce}:00000001:abcdef:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="abcdef"'
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (
        f'Digest username="pbx1", realm="kallrec", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5{extra}'
    )


def test_a_correct_answer_proves_the_credential() -> None:
    guard = DigestGuard([PBX])
    assert guard.verify(request_with(answer(guard))) == PBX
    assert guard.verify(request_with(answer(guard, qop=False))) == PBX


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic cGJ4MTpzM2NyZXQ=",
        "Digest garbage",
        'Digest username="nobody", realm="kallrec", nonce="1.x", uri="x", response="y"',
    ],
)
def test_missing_or_foreign_authorization_proves_nothing(authorization: str | None) -> None:
    assert DigestGuard([PBX]).verify(request_with(authorization)) is None


def test_a_wrong_password_proves_nothing() -> None:
    guard = DigestGuard([PBX])
    assert guard.verify(request_with(answer(guard, "wrong"))) is None


def test_a_nonce_from_another_process_or_too_old_proves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guard = DigestGuard([PBX])
    other = DigestGuard([PBX])
    assert other.verify(request_with(answer(guard))) is None
    authorization = answer(guard)
    later = time.time() + digest.NONCE_SECONDS + 5
    monkeypatch.setattr(digest.time, "time", lambda: later)
    assert guard.verify(request_with(authorization)) is None


def test_no_credentials_means_no_challenges() -> None:
    assert not DigestGuard([]).enabled
    assert DigestGuard([PBX]).enabled
