from __future__ import annotations

import pytest

from kallrec import timeutil
from kallrec.config import parse_sip_trunks
from kallrec.db.models import Session
from kallrec.live import stream_tokens
from kallrec.sip.admission import Origin, Refusal, admit, session_id_of, trunk_for, uri_param

SECRET = b"s" * 32


def session(status: str = "created", org: str = "org_1", **fields: object) -> Session:
    values: dict[str, object] = {
        "id": "sess_01ABC",
        "org_id": org,
        "livemode": True,
        "mode": "ai_agent",
        "source_language": None,
        "target_language": None,
        "provider": None,
        "status": status,
        "recording_enabled": True,
        "recording_channels": "dual",
        "metadata": None,
        "stream_token": None,
        "stream_token_expires_at": None,
        "created_at": 0.0,
        "started_at": None,
        "ended_at": None,
    }
    values.update(fields)
    return Session(**values)  # type: ignore[arg-type]


def with_token(status: str = "created", ttl: float = 300) -> tuple[Session, str]:
    token = stream_tokens.mint("sess_01ABC", True, SECRET)
    return session(status, stream_token=token, stream_token_expires_at=timeutil.now() + ttl), token


def test_request_uri_parts() -> None:
    assert session_id_of("sip:sess_01ABC@host:5060;token=kst_x") == "sess_01ABC"
    assert session_id_of("sips:sess_01ABC@host") == "sess_01ABC"
    assert session_id_of("sip:alice@host") is None
    assert session_id_of("tel:+1555") is None
    assert uri_param("sip:sess_1@host;transport=udp;token=kst_abc", "token") == "kst_abc"
    assert uri_param("sip:sess_1@host", "token") == ""


def test_the_current_token_opens_its_session() -> None:
    s, token = with_token()
    assert admit(s, token, None, SECRET) is s


@pytest.mark.parametrize("case", ["no token", "expired", "other session", "no session"])
def test_anything_else_is_403_and_says_nothing(case: str) -> None:
    s, token = with_token(ttl=-1 if case == "expired" else 300)
    if case == "no token":
        token = ""
    if case == "other session":
        token = stream_tokens.mint("sess_OTHER", True, SECRET)
    target = None if case == "no session" else s
    with pytest.raises(Refusal) as refused:
        admit(target, token, None, SECRET)
    assert refused.value.status == 403


def test_an_ended_session_is_404_only_for_who_may_know() -> None:
    s, token = with_token(status="ended")
    with pytest.raises(Refusal) as refused:
        admit(s, token, None, SECRET)
    assert refused.value.status == 404
    with pytest.raises(Refusal) as stranger:
        admit(s, "", None, SECRET)
    assert stranger.value.status == 403


def test_a_trunk_or_credential_opens_its_own_organizations_sessions_only() -> None:
    assert admit(session(), "", Origin("org_1", True), SECRET).org_id == "org_1"
    for other in (Origin("org_2", True), Origin("org_1", False)):
        with pytest.raises(Refusal):
            admit(session(), "", other, SECRET)


def test_trunk_for_matches_the_source_address() -> None:
    trunks = parse_sip_trunks("acme=10.0.0.0/8,192.0.2.7;beta:test=2001:db8::/32;agent=caller")
    assert trunk_for(trunks, "10.1.2.3") == trunks[0]
    assert trunk_for(trunks, "192.0.2.7") == trunks[0]
    assert trunk_for(trunks, "2001:db8::1") == trunks[1]
    assert trunks[1].livemode is False and trunks[1].agent_is_caller
    assert trunk_for(trunks, "127.0.0.1") is None
    assert trunk_for(trunks, "not-an-ip") is None
