"""SIP into sessions, end to end: `kallrec serve` with SIP on, SIPp as the PBX, recordings
downloaded and decoded with FFmpeg (PyAV)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.helpers import Server, auth, band_power
from tests.e2e.streaming import new_session, ready_recordings, samples_of
from tests.sip.rtp_audio import packets, tone, write_pcap
from tests.sip.sipp import (
    needs_sipp,
    run_sipp,
    scenario,
    sip_env,
    sipp_report,
    wait_for_sip,
    free_udp_port,
)

pytestmark = [pytest.mark.e2e, needs_sipp]

SECONDS = 4.0
REPO = Path(__file__).resolve().parents[2]


def sip_server(start_server: Callable[..., Server], trunks: str = "") -> tuple[Server, int]:
    port = free_udp_port()
    server = start_server(sip_env(port, trunks))
    wait_for_sip(port)
    return server, port


def session_of(server: Server, key: str, session_id: str) -> dict[str, Any]:
    response = httpx.get(server.url(f"/v1/sessions/{session_id}"), headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_pbx_call_is_recorded_into_its_session_and_ends_with_bye(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server, port = sip_server(start_server)
    key = server.create_key("acme")
    session = new_session(server, key, channels="dual")
    pcap = write_pcap(tmp_path / "tone.pcap", packets(tone(SECONDS, 1000.0)))
    path = scenario(
        "call.xml",
        tmp_path,
        pcap=str(pcap),
        pcap_ms=str(int(SECONDS * 1000) + 300),
        uri_params=f";token={session['stream']['token']}",
    )
    result = run_sipp(path, port, session["id"])
    assert result.returncode == 0, sipp_report(result, path)

    recordings = ready_recordings(server, key, session["id"], 3)
    ended = session_of(server, key, session["id"])
    assert ended["status"] == "ended"
    assert ended["provider"] is None or ended["provider"] == "sip"
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
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server, port = sip_server(start_server)
    key = server.create_key("acme")
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
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server, port = sip_server(start_server)
    key = server.create_key("acme")
    session = new_session(server, key, channels="dual")
    seconds = 6.0
    sent = packets(tone(seconds, 1000.0))  # 300 packets
    # 5 % lost, in three bursts of 5 (100 ms each, long enough to see in an MP3), never the
    # first or last packet (they set where the recording starts and ends).
    lost = {i for start in (60, 150, 240) for i in range(start, start + 5)}
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
    metrics = httpx.get(server.url("/metrics")).text
    lost_line = next(
        line for line in metrics.splitlines() if line.startswith("kallrec_rtp_packets_lost_total")
    )
    assert float(lost_line.split()[-1]) == len(lost)
