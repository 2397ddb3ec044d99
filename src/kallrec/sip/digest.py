"""SIP digest authentication on kallrec's side (RFC 3261 §22, RFC 7616/8760): per-organization
credentials (KALLREC_SIP_CREDENTIALS) as Kallglot's SIP trunks use them.

An INVITE that carries no stream token and comes from no trunk's address is challenged (401 with
``WWW-Authenticate``) when credentials are configured; the caller sends it again with
``Authorization``, and a valid answer stands for the credential's organization, as a trunk
would. The nonce is stateless: a timestamp and its HMAC under a key of this process, valid for
``NONCE_SECONDS``; a restarted SIP process challenges again. The expected response is computed
with aiosipua's client-side digest (the same formula answered from the other end), MD5 or
SHA-256, with ``qop=auth`` or RFC 2617's form without it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from aiosipua import SipRequest
from aiosipua.auth import SipDigestAuth, build_credentials
from aiosipua.headers import AuthChallenge, parse_auth

from kallrec.config import SipCredential

REALM = "kallrec"
NONCE_SECONDS = 300


class DigestGuard:
    def __init__(self, credentials: list[SipCredential], key: bytes | None = None) -> None:
        self.credentials = {c.username: c for c in credentials}
        self._key = key or secrets.token_bytes(32)

    @property
    def enabled(self) -> bool:
        return bool(self.credentials)

    def challenge(self) -> str:
        stamp = str(int(time.time()))
        nonce = f"{stamp}.{self._mac(stamp)}"
        return f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'

    def _mac(self, stamp: str) -> str:
        return hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def _fresh(self, nonce: str) -> bool:
        stamp, _, mac = nonce.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._mac(stamp)):
            return False
        return 0 <= time.time() - int(stamp) <= NONCE_SECONDS

    def verify(self, request: SipRequest) -> SipCredential | None:
        """The credential the request's Authorization proves, or None."""
        header = request.get_header("authorization")
        if not header:
            return None
        params = parse_auth(header, credentials=True).params
        credential = self.credentials.get(params.get("username", ""))
        nonce = params.get("nonce", "")
        if credential is None or params.get("realm") != REALM or not self._fresh(nonce):
            return None
        challenge_params = {"realm": REALM, "nonce": nonce}
        challenge_params["algorithm"] = params.get("algorithm", "MD5")
        if params.get("qop"):
            challenge_params["qop"] = params["qop"]
        try:
            nonce_count = int(params.get("nc", "1"), 16)
        except ValueError:
            return None
        expected = build_credentials(
            SipDigestAuth(credential.username, credential.password),
            AuthChallenge("Digest", challenge_params),
            request.method,
            params.get("uri", ""),
            nonce_count=nonce_count,
            cnonce=params.get("cnonce"),
        )
        answer = params.get("response", "")
        if expected is None or not hmac.compare_digest(expected.params["response"], answer):
            return None
        return credential
