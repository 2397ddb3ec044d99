"""SIP into sessions, end to end: `kallrec serve` with SIP on, SIPp as the PBX, recordings
downloaded and decoded with FFmpeg (PyAV)."""

from __future__ import annotations

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
