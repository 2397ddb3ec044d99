"""Driving SIPp (Debian's sip-tester) and plain SIP over UDP for the SIP tests."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.e2e.helpers import free_port

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")

# scripts/test installs it; under CI a missing SIPp fails the tests instead of skipping them.
needs_sipp = pytest.mark.skipif(
    SIPP is None and os.environ.get("CI") != "true",
    reason="SIPp (Debian sip-tester) is not installed",
)


def free_udp_port() -> int:
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def sip_env(sip_port: int, trunks: str = "", **extra: str) -> dict[str, str]:
    """Settings for a server with SIP on UDP and TCP, and an RTP range of its own (other tests,
    and other test runs, on this machine must not collide with it)."""
    first = random.randrange(21000, 59000, 2)
    env = {
        "KALLREC_SIP_LISTEN": f"udp:127.0.0.1:{sip_port},tcp:127.0.0.1:{sip_port}",
        "KALLREC_RTP_PORTS": f"{first}-{first + 399}",
        "KALLREC_JOB_POLL_SECONDS": "0.05",
    }
    if trunks:
        env["KALLREC_SIP_TRUNKS"] = trunks
    env.update(extra)
    return env


def options(port: int, timeout: float = 1.0) -> str | None:
    """The status line kallrec answers an OPTIONS with over UDP, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        call_id = uuid.uuid4().hex
        message = (
            f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{call_id[:12]}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={call_id[:8]}\r\n"
            f"To: <sip:ping@127.0.0.1:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        sock.sendto(message.encode(), ("127.0.0.1", port))
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return None
        return data.decode(errors="replace").split("\r\n", 1)[0]


def wait_for_sip(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if options(port, 0.5) == "SIP/2.0 200 OK":
            return
        time.sleep(0.1)
    raise AssertionError(f"no SIP answer on UDP port {port} after {timeout}s")


def scenario(name: str, directory: Path, **values: str) -> Path:
    """A scenario of tests/sip/scenarios with its @NAME@ placeholders filled in."""
    text = (SCENARIOS / name).read_text()
    service = values.pop("service", None)
    if service is not None:  # e.g. [field0]: a different session for every call
        text = text.replace("[service]", service)
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", value)
    assert "@PCAP" not in text and "@URI_PARAMS@" not in text, "a placeholder was left unfilled"
    path = directory / f"{uuid.uuid4().hex[:8]}-{name}"
    path.write_text(text)
    return path


def run_sipp(
    scenario_path: Path,
    sip_port: int,
    service: str,
    *,
    calls: int = 1,
    concurrent: int = 1,
    rate: int = 10,
    transport: str = "u1",
    timeout: float = 120,
    keys: Mapping[str, str] | None = None,
    inject: Path | None = None,
    extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Runs SIPp as the UAC against kallrec; its return code is 0 when every call succeeded."""
    assert SIPP is not None
    workdir = scenario_path.parent
    cmd = [
        SIPP, f"127.0.0.1:{sip_port}",
        "-sf", str(scenario_path),
        "-s", service,
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mp", str(random.randrange(40000, 60000, 2)),
        "-t", transport,
        "-m", str(calls), "-l", str(concurrent), "-r", str(rate),
        "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-nostdin", "-trace_err", "-trace_msg",
        "-message_file", str(workdir / f"{scenario_path.stem}.messages.log"),
        "-error_file", str(workdir / f"{scenario_path.stem}.errors.log"),
    ]  # fmt: skip
    if inject is not None:
        cmd += ["-inf", str(inject)]
    cmd += list(extra)
    for key, value in (keys or {}).items():
        cmd += ["-key", key, value]
    return subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30, check=False
    )


def sipp_report(result: subprocess.CompletedProcess[str], scenario_path: Path) -> str:
    """What to show when SIPp failed: its output and the messages it exchanged."""
    parts = [result.stdout[-3000:], result.stderr[-3000:]]
    for suffix in ("errors.log", "messages.log"):
        log = scenario_path.parent / f"{scenario_path.stem}.{suffix}"
        if log.exists():
            parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-6000:])
    return "\n".join(parts)


OFFER = (
    "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


def request(port: int, raw: bytes, timeout: float = 3.0) -> list[str]:
    """Sends one datagram to kallrec's SIP port; the status lines of the answers (final last)."""
    lines: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        sock.sendto(raw, ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                break
            line = data.decode(errors="replace").split("\r\n", 1)[0]
            lines.append(line)
            if not line.startswith("SIP/2.0 1"):
                break
    return lines


def invite(
    port: int, uri: str, *, headers: Mapping[str, str] | None = None, body: str = OFFER
) -> str:
    """A bare INVITE (no dialog follows: an answer's 2xx is left unacknowledged); the final
    status line kallrec answered, or "" when there was none."""
    call_id = uuid.uuid4().hex
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = (
        f"INVITE {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id[:16]};rport\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={call_id[:8]}\r\n"
        f"To: <{uri.split(';')[0]}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:probe@127.0.0.1:5999>\r\nMax-Forwards: 70\r\n"
        f"{extra}Content-Type: application/sdp\r\nContent-Length: {len(body.encode())}\r\n\r\n"
        f"{body}"
    )
    lines = request(port, raw.encode())
    return lines[-1] if lines and not lines[-1].startswith("SIP/2.0 1") else ""


BARESIP = shutil.which("baresip")

needs_baresip = pytest.mark.skipif(
    BARESIP is None and os.environ.get("CI") != "true",
    reason="baresip is not installed",
)


def baresip_call(directory: Path, uri: str, microphone: Path, seconds: int) -> str:
    """One call from baresip to ``uri`` with ``microphone`` (a WAV) as its audio source, hung up
    after ``seconds``; baresip's output."""
    assert BARESIP is not None
    conf = directory / "baresip"
    conf.mkdir()
    rtp = random.randrange(30000, 40000, 2)
    (conf / "config").write_text(
        "module_path /usr/lib/baresip/modules\n"
        f"sip_listen 127.0.0.1:{free_udp_port()}\n"
        f"audio_source aufile,{microphone}\n"
        # No sound card here: what kallrec might send would go to the bridge, and nowhere.
        "audio_player aubridge,nil\naudio_alert aubridge,nil\n"
        f"rtp_ports {rtp}-{rtp + 99}\n"
        "module g711.so\nmodule aufile.so\nmodule aubridge.so\n"
        "module_app account.so\nmodule_app menu.so\n"
    )
    (conf / "accounts").write_text("<sip:softphone@127.0.0.1>;regint=0\n")
    result = subprocess.run(
        [BARESIP, "-f", str(conf), "-e", f"/dial {uri}", "-t", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    return result.stdout + result.stderr
