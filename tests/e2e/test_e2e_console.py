"""The console in a real browser (Debian's Chromium, driven by Playwright) against a real
`kallrec serve`: sign in, find a call, play and seek it, play one speaker alone, share a link that
plays on a page of another origin, revoke it, and check accessibility and the phone layout.
Screenshots go to tests/artifacts/ (KALLREC_TEST_ARTIFACTS) for a person to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import soundfile as sf

from tests.e2e.browser import chromium, other_origin, screenshot, serious_accessibility_violations
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import HTTP_TIMEOUT, Server, auth, upload, wait_ready

RATE = 8000
CALL_SECONDS = 600  # long enough that the middle is not in the player's first read


@dataclass
class Site:
    server: Server
    key: str
    session_id: str
    recordings: dict[str, str]  # channel → recording id
    other_origin: str

    @property
    def console(self) -> str:
        return self.server.url("/console")


def speech_like(seconds: float, freq: float, seed: int) -> np.ndarray:
    """A tone that comes and goes, so the waveform has a shape worth looking at."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * np.pi * t / rng.uniform(5, 9)) + rng.uniform(0.1, 0.4), 0, 1)
    return np.sin(2 * np.pi * freq * t) * envelope * 0.5


def make_call(server: Server, key: str, tmp: Path, **session: Any) -> str:
    made = requests.post(
        server.url("/v1/sessions"),
        headers=auth(key),
        json={"mode": "assistive_translation", **session},
        timeout=HTTP_TIMEOUT,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def end_call(server: Server, key: str, session_id: str) -> None:
    ended = requests.post(
        server.url(f"/v1/sessions/{session_id}/end"), headers=auth(key), timeout=HTTP_TIMEOUT
    )
    assert ended.status_code == 200, ended.text


@pytest.fixture(scope="module")
def site(module_servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = module_servers(env={"KALLREC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"})
    key = server.create_key("acme")
    tmp = tmp_path_factory.mktemp("calls")
    hook = requests.post(
        server.url("/v1/webhook_endpoints"),
        headers=auth(key),
        json={
            "url": "http://127.0.0.1:9/crm/hooks",  # nothing listens: deliveries fail and retry
            "enabled_events": ["recording.ready"],
            "description": "CRM sync",
        },
        timeout=HTTP_TIMEOUT,
    )
    assert hook.status_code == 201, hook.text
    # A few short calls for the list, then the one the tests play: ten minutes, agent on the
    # left, customer on the right.
    for n, (number, order) in enumerate((("+14155550101", "A-1001"), ("+4930901820", "B-2002"))):
        sid = make_call(
            server,
            key,
            tmp,
            routing={"type": "twilio", "phone_number": number, "call_sid": f"CA{n}f00d"},
            metadata={"order": order, "team": "sales"},
        )
        wav = tmp / f"short{n}.wav"
        sf.write(wav, speech_like(20, 300 + 40 * n, n), RATE, subtype="PCM_16")
        body = upload(server, key, wav, data={"session_id": sid}).json()
        wait_ready(server, key, body["id"])
        end_call(server, key, sid)
    session_id = make_call(
        server,
        key,
        tmp,
        routing={"type": "twilio", "phone_number": "+442071838750", "call_sid": "CA9a7e11"},
        metadata={"order": "C-3003", "team": "support", "priority": "high"},
    )
    stereo = np.stack(
        [speech_like(CALL_SECONDS, 220, 7), speech_like(CALL_SECONDS, 330, 8)], axis=1
    )
    wav = tmp / "call.wav"
    sf.write(wav, stereo, RATE, subtype="PCM_16")
    imported = upload(server, key, wav, data={"session_id": session_id, "channel": "dual"})
    assert imported.status_code == 202, imported.text
    listed = requests.get(
        server.url(f"/v1/sessions/{session_id}/recordings"), headers=auth(key), timeout=30
    ).json()["data"]
    recordings = {r["channel"]: r["id"] for r in listed}
    assert set(recordings) == {"mixed", "agent", "customer"}
    for rec_id in recordings.values():
        wait_ready(server, key, rec_id, timeout=120)
    end_call(server, key, session_id)
    with other_origin() as origin:
        yield Site(server, key, session_id, recordings, origin)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.server.base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in(page: Any, site: Site) -> None:
    page.goto(site.console)
    page.get_by_label("API key").fill(site.key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Calls", level=1).wait_for()


def open_the_call(page: Any, site: Site) -> None:
    sign_in(page, site)
    page.get_by_label("Search").fill("C-3003")
    page.get_by_role("button", name="Apply").click()
    until(page, "document.querySelectorAll('tbody tr').length === 1")
    page.get_by_role("link", name="+442071838750").click()
    page.get_by_role("heading", name="Call with +442071838750").wait_for()
    page.locator("[data-channel=mixed] canvas").wait_for()


def until(page: Any, expression: str, timeout: float = 20) -> None:
    """Waits for a JavaScript expression to be true. Polled with evaluate() from here: the
    console's Content-Security-Policy (no eval) refuses Playwright's wait_for_function, and the
    tests keep that policy on, so that they prove the console works under it."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def audio_state(page: Any, channel: str) -> dict[str, Any]:
    return page.evaluate(
        """(channel) => {
            const a = document.querySelector(`[data-channel=${channel}] audio`);
            return {time: a.currentTime, paused: a.paused, duration: a.duration, src: a.src};
        }""",
        channel,
    )


def test_signing_in_keeps_the_key_in_the_tab_only(page, site) -> None:
    page.goto(site.console)
    page.get_by_label("API key").fill("sk_test_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="Invalid API key").wait_for()
    screenshot(page, "01-sign-in-refused")
    sign_in(page, site)
    assert page.evaluate("sessionStorage.getItem('kallrec.key')") == site.key
    assert page.evaluate("localStorage.length") == 0
    assert site.key not in page.url
    assert page.locator("tbody tr").count() == 3
    screenshot(page, "02-calls")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    assert page.evaluate("sessionStorage.getItem('kallrec.key')") is None


def test_a_call_is_found_by_metadata_and_carrier_id(page, site) -> None:
    sign_in(page, site)
    for query in ("C-3003", "CA9a7e11"):
        page.get_by_label("Search").fill(query)
        page.get_by_role("button", name="Apply").click()
        until(page, "document.querySelectorAll('tbody tr').length === 1")
        assert "+442071838750" in page.locator("tbody").inner_text()
        page.get_by_role("button", name="Clear").click()
        until(page, "document.querySelectorAll('tbody tr').length === 3")
    page.get_by_label("Search").fill("no such order")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text("No calls match.").wait_for()


def test_play_then_seek_to_the_middle_with_ranged_requests(page, site) -> None:
    ranged: list[tuple[str, str]] = []

    def seen(response: Any) -> None:
        if "/v1/playback/" in response.url and response.request.headers.get("range"):
            ranged.append((response.request.headers["range"], str(response.status)))

    page.on("response", seen)
    open_the_call(page, site)
    screenshot(page, "03-call")
    # Seek first (the call is not loaded yet, so the player must ask for the middle), then play.
    wave = page.locator("[data-channel=mixed] .wave")
    box = wave.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    now = "document.querySelector('[data-channel=mixed] audio').currentTime"
    until(page, f"Math.abs({now} - {CALL_SECONDS / 2}) < {CALL_SECONDS * 0.02}")
    page.get_by_role("button", name="Play Whole call").click()
    until(page, f"{now} > {CALL_SECONDS / 2 + 0.5}")
    state = audio_state(page, "mixed")
    assert not state["paused"]
    assert abs(state["duration"] - CALL_SECONDS) < 2
    assert "/v1/playback/" in state["src"] and site.key not in state["src"]
    # The player read the file in ranges: its first request, then one that starts past the
    # beginning (the seek), each answered 206.
    starts = [int(r.split("=")[1].split("-")[0]) for r, status in ranged if status == "206"]
    assert 0 in starts, ranged
    assert any(start > 0 for start in starts), ranged
    # Keyboard: the waveform is a slider.
    before = audio_state(page, "mixed")["time"]
    wave.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert audio_state(page, "mixed")["time"] < before - 5
    page.keyboard.press("Home")
    until(page, "document.querySelector('[data-channel=mixed] audio').currentTime < 3")
    page.get_by_label("Speed").first.select_option("1.5")
    assert page.evaluate("document.querySelector('[data-channel=mixed] audio').playbackRate") == 1.5
    screenshot(page, "04-playing")


def test_the_agent_track_plays_alone(page, site) -> None:
    open_the_call(page, site)
    page.get_by_role("button", name="Play Whole call").click()
    until(page, "document.querySelector('[data-channel=mixed] audio').currentTime > 0.2")
    page.get_by_role("button", name="Play Agent").click()
    until(page, "document.querySelector('[data-channel=agent] audio').currentTime > 0.5")
    assert not audio_state(page, "agent")["paused"]
    assert audio_state(page, "mixed")["paused"]
    assert audio_state(page, "customer")["paused"]
    link = audio_state(page, "agent")["src"]
    # The link plays the agent's recording: the same bytes as its /audio.
    played = requests.get(link, timeout=HTTP_TIMEOUT)
    audio = requests.get(
        site.server.audio_url(site.recordings["agent"]), headers=auth(site.key), timeout=30
    )
    assert played.status_code == 200 and played.content == audio.content
    screenshot(page, "05-agent-alone")


def test_a_copied_link_plays_on_another_origin_until_revoked(browser, page, site) -> None:
    open_the_call(page, site)
    mixed = page.locator("[data-channel=mixed]")
    mixed.get_by_label("Link lasts").select_option("86400")
    mixed.get_by_role("button", name="Copy link").click()
    mixed.get_by_role("button", name="Revoke").wait_for()
    url = page.evaluate("navigator.clipboard.readText()")
    assert url.startswith(site.server.base_url + "/v1/playback/")
    assert mixed.get_by_label("Playback link for Whole call").input_value() == url
    screenshot(page, "06-link-copied")

    elsewhere = browser.new_page()  # no key, no cookies: another site
    elsewhere.goto(f"{site.other_origin}/?src={requests.utils.quote(url, safe='')}")
    elsewhere.evaluate("document.getElementById('player').play()")
    until(elsewhere, "document.getElementById('player').currentTime > 0.5")
    peaks = elsewhere.evaluate(
        "async (u) => { const r = await fetch(u); return [r.status, (await r.json()).length]; }",
        url.replace("/audio?", "/peaks?"),
    )
    assert peaks == [200, 2000]
    screenshot(elsewhere, "07-played-on-another-origin")

    mixed.get_by_role("button", name="Revoke").click()
    mixed.get_by_text("Link revoked").wait_for()
    refused = elsewhere.evaluate(
        "async (u) => { const r = await fetch(u); "
        "return [r.status, (await r.json()).error.code]; }",
        url,
    )
    assert refused == [403, "link_revoked"]
    elsewhere.reload()
    until(elsewhere, "document.getElementById('player').error !== null")
    elsewhere.close()


def test_webhook_endpoints_and_their_deliveries(page, site) -> None:
    sign_in(page, site)
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="http://127.0.0.1:9/crm/hooks").click()
    page.get_by_role("heading", name="Deliveries").wait_for()
    until(page, "document.querySelectorAll('tbody tr').length >= 1")
    assert "recording.ready" in page.locator("tbody").inner_text()
    screenshot(page, "08-webhook-deliveries")


def test_the_console_fits_a_phone(browser, site) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    try:
        sign_in(page, site)
        screenshot(page, "09-phone-calls")
        page.get_by_role("link", name="+442071838750").click()
        page.locator("[data-channel=customer] canvas").wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        screenshot(page, "10-phone-call")
    finally:
        context.close()


def test_no_serious_accessibility_violations(page, site) -> None:
    page.goto(site.console)
    assert serious_accessibility_violations(page) == []
    open_the_call(page, site)
    assert serious_accessibility_violations(page) == []
    page.get_by_role("link", name="Recordings").click()
    page.get_by_role("heading", name="Recordings", level=1).wait_for()
    assert serious_accessibility_violations(page) == []
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("heading", name="Webhooks", level=1).wait_for()
    assert serious_accessibility_violations(page) == []


def test_the_console_loads_nothing_from_other_hosts(page, site) -> None:
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    open_the_call(page, site)
    assert hosts == {site.server.base_url.split("/")[2]}
    response = requests.get(site.console, timeout=HTTP_TIMEOUT)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers
