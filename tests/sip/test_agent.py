from __future__ import annotations

from aiosipua import IncomingCall, SipMessage, SipRequest, SipResponse, SipTransport

from kallrec.metrics import SipMetrics
from kallrec.sip.agent import Agent


class Recorder(SipTransport):
    """A transport that keeps what the agent sends."""

    def __init__(self) -> None:
        super().__init__(local_addr=("127.0.0.1", 5060))
        self.sent: list[SipResponse] = []

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        assert isinstance(message, SipResponse)
        self.sent.append(message)

    def statuses(self) -> list[int]:
        return [m.status_code for m in self.sent]


SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n"
)


def invite(branch: str = "z9hG4bKone", body: str = SDP, extra: str = "") -> SipRequest:
    raw = (
        "INVITE sip:sess_1@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
        "From: <sip:pbx@127.0.0.1>;tag=abc\r\nTo: <sip:sess_1@127.0.0.1>\r\n"
        "Call-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1:5070>\r\n"
        f"Max-Forwards: 70\r\n{extra}Content-Type: application/sdp\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    message = SipMessage.parse(raw.encode())
    assert isinstance(message, SipRequest)
    return message


def agent() -> tuple[Agent, Recorder, list[IncomingCall]]:
    transport = Recorder()
    uas = Agent(transport, session_expires=1800, min_se=90)
    uas.metrics = SipMetrics()
    calls: list[IncomingCall] = []
    uas.on_invite = calls.append
    return uas, transport, calls


async def test_a_retransmitted_invite_is_the_same_call_and_gets_trying_again() -> None:
    uas, transport, calls = agent()
    uas._handle_request(invite(), ("127.0.0.1", 5070))
    uas._handle_request(invite(), ("127.0.0.1", 5070))
    assert len(calls) == 1
    assert transport.statuses() == [100, 100]
    # Once answered, a late copy changes nothing (the 200 is being retransmitted already).
    calls[0].accept()
    uas._handle_request(invite(), ("127.0.0.1", 5070))
    assert len(calls) == 1 and transport.statuses() == [100, 100, 200]
    calls[0]._stop_retransmissions()


def test_an_invite_aiosipua_cannot_read_gets_400_not_silence() -> None:
    uas, transport, calls = agent()
    broken = "v=0\r\nm=audio notaport RTP/AVP 0\r\n"
    uas._handle_request(invite(body=broken), ("127.0.0.1", 5070))
    assert calls == []
    assert transport.statuses() == [400]
    assert uas.get_call("call-1") is None


def test_session_timers_only_for_callers_that_take_part() -> None:
    uas, _, calls = agent()
    uas._handle_request(invite(), ("127.0.0.1", 5070))
    assert calls[0].session_interval is None
    assert uas.session_expires == 1800  # restored for the next INVITE
    uas, _, calls = agent()
    uas._handle_request(invite(extra="Supported: timer, replaces\r\n"), ("127.0.0.1", 5070))
    assert calls[0].session_interval == 1800
