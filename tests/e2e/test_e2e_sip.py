"""SIP into sessions, end to end: `kallrec serve` with SIP on, SIPp as the PBX, recordings
downloaded and decoded with FFmpeg (PyAV)."""

from __future__ import annotations

import socket
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.e2e.helpers import Server, auth, band_power, free_port
from tests.e2e.streaming import new_session, ready_recordings, samples_of
from tests.sip.rtp_audio import Packet, packets, tone, write_pcap
from tests.sip.sipp import (
    OFFER,
    baresip_call,
    free_udp_port,
    invite,
    needs_baresip,
    needs_sipp,
    options,
    request,
    run_sipp,
    scenario,
    sip_env,
    sipp_report,
    wait_for_sip,
)
from tests.webhooks.tls import CertificateAuthority

pytestmark = [pytest.mark.e2e, needs_sipp]

SECONDS = 4.0
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Sip:
    server: Server
    port: int  # SIP over UDP and TCP
    key: str
    tls_port: int
    authority: CertificateAuthority


@pytest.fixture(scope="module")
def sip(module_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Sip:
    """One server for the tests that need no settings of their own: SIP on UDP, TCP and TLS,
    and a trunk elsewhere (10.0.0.0/8), which must not let the tests' 127.0.0.1 in."""
    certificates = tmp_path_factory.mktemp("certificates")
    authority = CertificateAuthority(certificates)
    authority.server_context("localhost")  # writes localhost.pem and localhost.key
    port, tls_port = free_udp_port(), free_port()
    env = sip_env(port, trunks="acme=10.0.0.0/8")
    env["KALLREC_SIP_LISTEN"] += f",tls:127.0.0.1:{tls_port}"
    env["KALLREC_SIP_TLS_CERT"] = str(certificates / "localhost.pem")
    env["KALLREC_SIP_TLS_KEY"] = str(certificates / "localhost.key")
    server = module_servers(env)
    wait_for_sip(port)
    return Sip(server, port, server.create_key("acme"), tls_port, authority)


def metric(server: Server, sample: str) -> float:
    """The value of one sample on /metrics (``name`` or ``name{labels}``), 0 when absent."""
    for line in httpx.get(server.url("/metrics")).text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def sip_server(start_server: Callable[..., Server], trunks: str = "") -> tuple[Server, int]:
    port = free_udp_port()
    server = start_server(sip_env(port, trunks))
    wait_for_sip(port)
    return server, port


def session_of(server: Server, key: str, session_id: str) -> dict[str, Any]:
    response = httpx.get(server.url(f"/v1/sessions/{session_id}"), headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_a_pbx_call_is_recorded_into_its_session_and_ends_with_bye(
    sip: Sip, tmp_path: Path, transport: str
) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key, channels="dual")
    # The address a PBX routes the call to, in the session object.
    assert session["sip"] == {"uri": f"sip:{session['id']}@127.0.0.1:{port}"}
    pcap = write_pcap(tmp_path / "tone.pcap", packets(tone(SECONDS, 1000.0)))
    path = scenario(
        "call.xml",
        tmp_path,
        pcap=str(pcap),
        pcap_ms=str(int(SECONDS * 1000) + 300),
        uri_params=f";token={session['stream']['token']}",
    )
    result = run_sipp(path, port, session["id"], transport=transport)
    assert result.returncode == 0, sipp_report(result, path)

    recordings = ready_recordings(server, key, session["id"], 3)
    ended = session_of(server, key, session["id"])
    assert ended["status"] == "ended"
    assert ended["sip"] is None
    customer = samples_of(server, key, recordings["customer"])
    # The caller's audio is the customer's track (the session's routing is not outbound).
    assert abs(recordings["customer"]["duration"] - SECONDS) <= SECONDS * 0.005
    assert band_power(customer[1600:-1600], 8000, 1000.0) > 100 * band_power(
        customer[1600:-1600], 8000, 440.0
    )
    agent = samples_of(server, key, recordings["agent"])
    assert np.sqrt(np.mean(agent**2)) < 0.01  # nobody spoke on the agent's side


def sender_command() -> str:
    """The command SIPp's exec runs to send RTP to the ports it read from kallrec's answer."""
    return f"env PYTHONPATH={REPO} {sys.executable} -m tests.sip.send_rtp"


def test_a_siprec_session_creates_a_session_with_each_party_on_its_own_track(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server, port = sip_server(start_server, trunks="acme=127.0.0.1/32")
    key = server.create_key("acme")
    path = scenario(
        "siprec.xml",
        tmp_path,
        sender=sender_command(),
        seconds=str(SECONDS),
        pause_ms=str(int(SECONDS * 1000) + 1500),
    )
    result = run_sipp(path, port, "recorder")
    assert result.returncode == 0, sipp_report(result, path)

    sessions = httpx.get(server.url("/v1/sessions"), headers=auth(key)).json()["data"]
    assert len(sessions) == 1
    session = sessions[0]
    assert session["provider"] == "sip"
    assert session["recording"]["channels"] == "dual"
    metadata = session["metadata"]
    # The first participant (who placed the call) is the customer; label 2 is what alice sends.
    assert metadata["customer_aor"] == "sip:alice@atlanta.example.com"
    assert metadata["agent_aor"] == "sip:bob@biloxi.example.com"
    assert metadata["siprec_session_id"] == "hVpd7YQgRW2nD22h7q60JQ=="
    recordings = ready_recordings(server, key, session["id"], 3)
    assert session_of(server, key, session["id"])["status"] == "ended"
    for channel, freq, other in (("customer", 1200.0, 440.0), ("agent", 440.0, 1200.0)):
        rec = recordings[channel]
        assert abs(rec["duration"] - SECONDS) <= SECONDS * 0.005, (channel, rec["duration"])
        samples = samples_of(server, key, rec)[1600:-1600]
        assert band_power(samples, 8000, freq) > 100 * band_power(samples, 8000, other), channel


def windows_rms(samples: np.ndarray, size: int = 160) -> np.ndarray:
    usable = samples[: len(samples) // size * size].reshape(-1, size)
    return np.sqrt((usable**2).mean(axis=1))  # type: ignore[no-any-return]


def test_hold_and_resume_keep_the_hold_as_silence_of_its_length(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The sender freezes its RTP clock during the hold (the second pcap's timestamps carry on
    from the first's): the re-INVITEs, not the timestamps, say that time passed."""
    server, port = sip_server(start_server)
    key = server.create_key("acme")
    session = new_session(server, key, channels="dual")
    part = 2.0
    first = packets(tone(part, 1000.0))
    second = packets(tone(part, 1000.0), first_seq=1100, first_ts=160_000 + 100 * 160)
    path = scenario(
        "hold.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "one.pcap", first)),
        pcap2=str(write_pcap(tmp_path / "two.pcap", second)),
        pcap_ms=str(int(part * 1000) + 200),
        hold_ms="2500",
        uri_params=f";token={session['stream']['token']}",
    )
    result = run_sipp(path, port, session["id"])
    assert result.returncode == 0, sipp_report(result, path)

    recordings = ready_recordings(server, key, session["id"], 3)
    duration = recordings["customer"]["duration"]
    # 2 s of tone, the hold (2.5 s plus the pause before it and the re-INVITEs), 2 s of tone.
    assert 6.5 <= duration <= 8.0, duration
    rms = windows_rms(samples_of(server, key, recordings["customer"]))
    loud = rms > 0.1
    assert loud[10:100].all()  # the first part (LAME's delay shifts it by ~7 windows)
    silent_run = max(len(run) for run in "".join("1" if x else "0" for x in loud).split("1"))
    assert silent_run * 0.02 >= 2.4  # the hold, as silence
    assert loud[-90:-10].all()  # the second part, after the hold


def test_cancel_before_answer_records_nothing_and_leaves_the_session_open(
    sip: Sip, tmp_path: Path
) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key)
    path = scenario("cancel.xml", tmp_path, uri_params=f";token={session['stream']['token']}")
    result = run_sipp(path, port, session["id"])
    assert result.returncode == 0, sipp_report(result, path)
    after = session_of(server, key, session["id"])
    assert after["status"] == "created"
    recordings = httpx.get(
        server.url(f"/v1/sessions/{session['id']}/recordings"), headers=auth(key)
    ).json()
    assert recordings["data"] == []


def test_lost_packets_are_silence_and_reordered_ones_land_in_place(
    sip: Sip, tmp_path: Path
) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key, channels="dual")
    seconds = 6.0
    sent = packets(tone(seconds, 1000.0))  # 300 packets
    # 5 % lost, in three bursts of 5 (100 ms each, long enough to see in an MP3), never the
    # first or last packet (they set where the recording starts and ends).
    lost = {i for start in (60, 150, 240) for i in range(start, start + 5)}
    lost_before = metric(server, "kallrec_rtp_packets_lost_total")
    kept = [p for i, p in enumerate(sent) if i not in lost]
    # 5 % reordered: 15 pairs of neighbours sent swapped (the later one first).
    order = list(range(len(kept)))
    for i in range(10, len(kept) - 10, 19):
        order[i], order[i + 1] = order[i + 1], order[i]
    schedule = [
        type(p)(kept[j].at if False else p.at, kept[j].data)
        for p, j in zip(kept, order, strict=True)
    ]
    path = scenario(
        "call.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "lossy.pcap", schedule)),
        pcap_ms=str(int(seconds * 1000) + 300),
        uri_params=f";token={session['stream']['token']}",
    )
    result = run_sipp(path, port, session["id"])
    assert result.returncode == 0, sipp_report(result, path)

    recordings = ready_recordings(server, key, session["id"], 3)
    assert abs(recordings["customer"]["duration"] - seconds) <= seconds * 0.005
    rms = windows_rms(samples_of(server, key, recordings["customer"]))
    tone_level = float(np.median(rms))
    # Find LAME's delay: the offset at which the bursts' middles are quietest.
    lag = min(range(0, 12), key=lambda k: sum(rms[s + 2 + k] for s in (60, 150, 240)))
    for start in (60, 150, 240):
        assert rms[start + 2 + lag] < 0.1 * tone_level, (start, rms[start + lag : start + 5 + lag])
    quiet = rms < 0.5 * tone_level
    gaps = {s + lag + d for s in (60, 150, 240) for d in range(-2, 8)}
    assert not any(quiet[i] for i in range(lag + 2, len(sent) - 2) if i not in gaps)
    assert metric(server, "kallrec_rtp_packets_lost_total") - lost_before == len(lost)


def test_calls_without_the_token_or_trunk_get_403_whatever_the_session(sip: Sip) -> None:
    # The server's trunk is not where the test calls from: it must not let 127.0.0.1 in.
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key)
    token = session["stream"]["token"]
    host = f"127.0.0.1:{port}"
    other = new_session(server, key)
    assert invite(port, f"sip:{session['id']}@{host}") == "SIP/2.0 403 Forbidden"
    assert (
        invite(port, f"sip:{session['id']}@{host};token=kst_live_nope") == "SIP/2.0 403 Forbidden"
    )
    # Another session's token opens only that session.
    wrong = f"sip:{session['id']}@{host};token={other['stream']['token']}"
    assert invite(port, wrong) == "SIP/2.0 403 Forbidden"
    # A session that does not exist answers exactly as one that does.
    assert invite(port, f"sip:sess_01NOPE0000000000000000000@{host}") == "SIP/2.0 403 Forbidden"
    assert invite(port, f"sip:someone@{host}") == "SIP/2.0 403 Forbidden"
    # SIPREC from a source no trunk lists.
    siprec_contact = {"Contact": "<sip:sbc@127.0.0.1:5999>;+sip.src"}
    assert invite(port, f"sip:recorder@{host}", headers=siprec_contact) == "SIP/2.0 403 Forbidden"
    # Nothing was started by any of it.
    assert session_of(server, key, session["id"])["status"] == "created"
    # The holder of the token learns that its session ended; in a header works as in the URI.
    httpx.post(server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key))
    ended = invite(port, f"sip:{session['id']}@{host}", headers={"X-Kallrec-Token": token})
    assert ended == "SIP/2.0 404 Not Found"


def test_malformed_sip_and_rtp_change_nothing_and_crash_nothing(sip: Sip, tmp_path: Path) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key, channels="dual")
    token = session["stream"]["token"]
    host = f"127.0.0.1:{port}"
    for junk in (
        b"",
        b"\x00" * 100,
        b"INVITE\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
        b"SIP/2.0 200 OK\r\n\r\n",
        bytes(range(256)) * 20,
        b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1\r\n" + b"X: y\r\n" * 3000,
    ):
        request(port, junk, timeout=0.3)
    with socket.create_connection(("127.0.0.1", port)) as tcp:
        tcp.sendall(b"GARBAGE\r\n\r\n" + b"\xff" * 5000 + b"\r\n\r\n")
    uri = f"sip:{session['id']}@{host};token={token}"
    assert invite(port, uri, body="this is not SDP") == "SIP/2.0 488 Not Acceptable Here"
    assert invite(port, uri, body="v=0\r\nm=audio x RTP/AVP y\r\n") in (
        "SIP/2.0 400 Bad Request",
        "SIP/2.0 488 Not Acceptable Here",
    )
    video = OFFER.replace("m=audio 40000 RTP/AVP 0", "m=video 40000 RTP/AVP 96")
    assert invite(port, uri, body=video) == "SIP/2.0 488 Not Acceptable Here"
    assert session_of(server, key, session["id"])["status"] == "created"
    # A real call still works, with junk sent to its RTP port along the way (from the same
    # source as the audio and from another).
    seconds = 3.0
    sent = packets(tone(seconds, 1000.0))
    junk = [Packet(1.0, b"\x80"), Packet(1.01, b"\x00" * 40), Packet(1.5, b"\xbf" + b"\x00" * 30)]
    junk += [Packet(2.0, bytes([0x80, 0xC8]) + b"\x00" * 30)]  # RTCP, on the RTP port
    schedule = sorted(sent + junk, key=lambda p: p.at)
    path = scenario(
        "call.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "junk.pcap", schedule)),
        pcap_ms=str(int(seconds * 1000) + 300),
        uri_params=f";token={token}",
    )
    result = run_sipp(path, port, session["id"])
    assert result.returncode == 0, sipp_report(result, path)
    recordings = ready_recordings(server, key, session["id"], 3)
    assert abs(recordings["customer"]["duration"] - seconds) <= seconds * 0.005
    assert options(port) == "SIP/2.0 200 OK"
    assert "Traceback" not in server.log_text()


def test_fifty_concurrent_calls_each_record_into_their_own_session(
    sip: Sip, tmp_path: Path
) -> None:
    server, port, key = sip.server, sip.port, sip.key
    calls = 50
    sessions = [new_session(server, key, channels="mixed") for _ in range(calls)]
    # SIPp takes each call's session id and token from an injection file, one line per call.
    injection = tmp_path / "sessions.csv"
    injection.write_text(
        "SEQUENTIAL\n" + "".join(f"{s['id']};{s['stream']['token']}\n" for s in sessions)
    )
    seconds = 3.0
    path = scenario(
        "call.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "tone.pcap", packets(tone(seconds, 1000.0)))),
        pcap_ms=str(int(seconds * 1000) + 300),
        uri_params=";token=[field1]",
        service="[field0]",
    )
    answered = metric(server, 'kallrec_sip_calls_total{kind="sip"}')
    result = run_sipp(
        path, port, "unused", calls=calls, concurrent=calls, rate=50, inject=injection
    )
    assert result.returncode == 0, sipp_report(result, path)
    for session in sessions:
        recordings = ready_recordings(server, key, session["id"], 1, timeout=120)
        assert abs(recordings["mixed"]["duration"] - seconds) <= seconds * 0.005, session["id"]
    assert metric(server, 'kallrec_sip_calls_total{kind="sip"}') - answered == calls
    assert metric(server, 'kallrec_sip_calls_active{kind="sip"}') == 0


@needs_baresip
def test_a_softphone_call_with_a_wav_microphone_is_recorded(sip: Sip, tmp_path: Path) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key, channels="dual")
    microphone = tmp_path / "microphone.wav"
    sf.write(str(microphone), tone(3.0, 700.0), 8000, subtype="PCM_16")
    uri = f"sip:{session['id']}@127.0.0.1:{port};token={session['stream']['token']}"
    output = baresip_call(tmp_path, uri, microphone, seconds=5)
    assert "terminated" in output, output[-2000:]

    recordings = ready_recordings(server, key, session["id"], 3)
    # The call lasted about as long as baresip kept it up; the microphone's 3 s are in it.
    assert 3.0 <= recordings["customer"]["duration"] <= 5.5
    customer = samples_of(server, key, recordings["customer"])
    loud = windows_rms(customer) > 0.1
    assert 0.02 * loud.sum() >= 2.9  # the WAV's 3 seconds, all of them
    audible = customer[: len(loud) * 160][np.repeat(loud, 160)]
    assert band_power(audible, 8000, 700.0) > 100 * band_power(audible, 8000, 1000.0)


def test_ending_the_session_through_the_api_hangs_the_call_up(sip: Sip, tmp_path: Path) -> None:
    server, port, key = sip.server, sip.port, sip.key
    session = new_session(server, key, channels="dual")
    path = scenario(
        "ended.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "long.pcap", packets(tone(12.0, 1000.0)))),
        uri_params=f";token={session['stream']['token']}",
    )
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(run_sipp, path, port, session["id"], timeout=60)
        deadline = time.monotonic() + 20
        while session_of(server, key, session["id"])["status"] != "active":
            assert time.monotonic() < deadline and not call.done(), "the call never started"
            time.sleep(0.1)
        time.sleep(2.0)  # some audio
        ended = httpx.post(server.url(f"/v1/sessions/{session['id']}/end"), headers=auth(key))
        assert ended.status_code == 200
        result = call.result(timeout=90)  # SIPp finishes once kallrec's BYE is answered
    assert result.returncode == 0, sipp_report(result, path)
    recordings = ready_recordings(server, key, session["id"], 3)
    assert 1.5 <= recordings["customer"]["duration"] <= 10.0


def stream_request(sock: socket.socket, transport: str) -> str:
    """An OPTIONS over a stream whose Via names a listening port, not the connection's (as PBXs
    send them): the answer must come back on this connection all the same."""
    call_id = uuid.uuid4().hex
    sock.sendall(
        (
            "OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:5061;branch=z9hG4bK{call_id[:12]}\r\n"
            f"From: <sip:pbx@127.0.0.1>;tag={call_id[:6]}\r\nTo: <sip:ping@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    sock.settimeout(5)
    return sock.recv(65535).decode(errors="replace").split("\r\n", 1)[0]


def test_tcp_and_tls_answer_on_the_callers_connection(sip: Sip) -> None:
    port, tls_port = sip.port, sip.tls_port
    with socket.create_connection(("127.0.0.1", port)) as tcp:
        assert stream_request(tcp, "TCP") == "SIP/2.0 200 OK"
    context = sip.authority.client_context()
    with (
        socket.create_connection(("127.0.0.1", tls_port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert stream_request(tls, "TLS") == "SIP/2.0 200 OK"


def test_digest_credentials_let_a_pbx_call_without_a_token(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    port = free_udp_port()
    server = start_server(sip_env(port, KALLREC_SIP_CREDENTIALS="acme=pbx1:s3cret"))
    wait_for_sip(port)
    key = server.create_key("acme")
    session = new_session(server, key, channels="dual")
    # Without a token, the caller is challenged (the same whether the session exists or not).
    assert invite(port, f"sip:{session['id']}@127.0.0.1:{port}") == "SIP/2.0 401 Unauthorized"
    assert invite(port, f"sip:sess_01NOPE@127.0.0.1:{port}") == "SIP/2.0 401 Unauthorized"
    seconds = 3.0
    path = scenario(
        "call_digest.xml",
        tmp_path,
        pcap=str(write_pcap(tmp_path / "tone.pcap", packets(tone(seconds, 1000.0)))),
        pcap_ms=str(int(seconds * 1000) + 300),
    )
    wrong = run_sipp(path, port, session["id"], extra=["-au", "pbx1", "-ap", "wrong"], timeout=8)
    assert wrong.returncode != 0  # challenged again, never answered
    assert session_of(server, key, session["id"])["status"] == "created"
    result = run_sipp(path, port, session["id"], extra=["-au", "pbx1", "-ap", "s3cret"])
    assert result.returncode == 0, sipp_report(result, path)
    recordings = ready_recordings(server, key, session["id"], 3)
    assert abs(recordings["customer"]["duration"] - seconds) <= seconds * 0.005
