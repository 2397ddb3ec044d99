"""Who may call: a session's stream token, or a trunk (an organization's source addresses).

A plain SIP call names its session in the request URI's user part (``sip:sess_…@host``) and is
let in when one of these holds:

- it carries the session's current, unexpired stream token (the same ``kst_`` token and rules
  as the WebSocket stream): as a URI parameter (``sip:sess_…@host;token=kst_…``), or in an
  ``X-Kallrec-Token`` (or ``X-Stream-Token``) header;
- it comes from an address of a trunk (KALLREC_SIP_TRUNKS) of the session's organization and mode.

- it proves a digest credential (KALLREC_SIP_CREDENTIALS, digest.py) of the session's
  organization and mode: a call with neither token nor trunk address is challenged (401) when
  credentials are configured.

A SIPREC recording session names no session (it creates one): only a trunk or a credential lets
it in, and says for which organization.

Everything else gets the same answer, 403, whether the session exists, ended, or never did, so
the SIP port tells a stranger nothing about which sessions exist. A caller that is let in (it
holds the token, or it is the organization's trunk) learns that its session ended (404).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from ipaddress import ip_address

from kallrec import timeutil
from kallrec.config import SipTrunk
from kallrec.db.models import Session
from kallrec.live import stream_tokens

TOKEN_HEADERS = ("x-kallrec-token", "x-stream-token")
_SESSION_ID = re.compile(r"sess_[0-9A-Za-z]{1,64}")


class Refusal(Exception):
    """The final response an INVITE gets instead of 200."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def forbidden() -> Refusal:
    return Refusal(403, "Forbidden")


def ended() -> Refusal:
    return Refusal(404, "Not Found")


def session_id_of(request_uri: str) -> str | None:
    """The session id in ``sip:sess_…@host[;params]`` (the user part), or None."""
    scheme, _, rest = request_uri.partition(":")
    if scheme.lower() not in ("sip", "sips") or "@" not in rest:
        return None
    user = rest.split("@", 1)[0].split(";", 1)[0]
    return user if _SESSION_ID.fullmatch(user) else None


def uri_param(request_uri: str, name: str) -> str:
    """A URI parameter of the request URI (``;token=…``), or ""."""
    for param in request_uri.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == name:
            return value.split("?", 1)[0].strip()
    return ""


@dataclass(frozen=True)
class Origin:
    """Who is calling, when a trunk's address or a credential says so."""

    org_id: str
    livemode: bool
    agent_is_caller: bool = False


def trunk_for(trunks: list[SipTrunk], source_ip: str) -> SipTrunk | None:
    try:
        address = ip_address(source_ip)
    except ValueError:
        return None
    for trunk in trunks:
        if any(address in network for network in trunk.networks):
            return trunk
    return None


def token_opens(token: str, session: Session, secret: bytes) -> bool:
    """Whether ``token`` is the session's current, unexpired stream token (see api/stream.py)."""
    if not token or not stream_tokens.current_shape(token):
        return False
    if not stream_tokens.issued_for(token, session.id, secret):
        return False
    current = session.stream_token or ""
    return hmac.compare_digest(token.encode(), current.encode()) and (
        (session.stream_token_expires_at or 0) >= timeutil.now()
    )


def admit(
    session: Session | None,
    token: str,
    origin: Origin | None,
    secret: bytes,
) -> Session:
    """The session a plain call may record into; raises a Refusal otherwise.

    ``origin``: the organization a trunk's address or a credential vouches for, if any."""
    if session is None:
        raise forbidden()
    by_trunk = origin is not None and (origin.org_id, origin.livemode) == (
        session.org_id,
        session.livemode,
    )
    issued = bool(token) and stream_tokens.issued_for(token, session.id, secret)
    if session.status == "ended" and (by_trunk or issued):
        raise ended()
    if by_trunk or token_opens(token, session, secret):
        return session
    raise forbidden()
