"""Parsing stream messages: everything malformed is a StreamError with a code, never a crash."""

from __future__ import annotations

import base64
import json

import pytest

from kallrec.live.messages import AudioChunk, Control, End, Ping, StreamError, parse


def audio(**overrides: object) -> str:
    message: dict[str, object] = {
        "type": "audio.input",
        "sequence": 1,
        "timestamp_ms": 100,
        "speaker": "agent",
        "audio": {
            "encoding": "mulaw",
            "sample_rate_hz": 8000,
            "payload": base64.b64encode(b"\xff" * 160).decode(),
        },
    }
    message.update(overrides)
    return json.dumps(message)


def test_audio_chunk() -> None:
    chunk = parse(audio())
    assert chunk == AudioChunk("agent", 1, 100, b"\xff" * 160)


def test_timestamps_are_the_clients_clock_whatever_its_origin() -> None:
    # Kallglot's own example sends epoch milliseconds (and a large sequence).
    chunk = parse(audio(timestamp_ms=1_764_000_000_000, sequence=1_764_000_000))
    assert isinstance(chunk, AudioChunk) and chunk.timestamp_ms == 1_764_000_000_000


def test_ping_and_end() -> None:
    assert parse('{"type":"ping"}') == Ping()
    assert parse('{"type":"session.end"}') == End()


def test_the_older_docs_end_is_session_end() -> None:
    assert parse('{"type": "end"}') == End()


def test_the_older_docs_control_message_mutes_both_speakers() -> None:
    # Verbatim from the older docs: no speaker, so the whole stream.
    assert parse('{"type": "control", "action": "mute"}') == Control("mute", ("agent", "customer"))
    assert parse('{"type": "control", "action": "unmute"}') == Control("unmute")


def test_a_control_message_may_name_one_speaker() -> None:
    message = '{"type": "control", "action": "mute", "speaker": "customer"}'
    assert parse(message) == Control("mute", ("customer",))


@pytest.mark.parametrize("action", ["pause_transcription", "resume_transcription"])
def test_transcription_controls_are_understood(action: str) -> None:
    assert parse(json.dumps({"type": "control", "action": action})) == Control(action)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ("[1,2]", "invalid_message"),
        ('{"type":"dance"}', "unknown_message_type"),
        (audio(speaker="robot"), "invalid_message"),
        (audio(sequence=-1), "invalid_message"),
        (audio(sequence="1"), "invalid_message"),
        (audio(timestamp_ms=True), "invalid_message"),
        (audio(timestamp_ms=2**53 + 1), "invalid_message"),
        (audio(timestamp_ms=-1), "invalid_message"),
        (audio(timestamp_ms=1.5), "invalid_message"),
        (
            audio(audio={"encoding": "pcm16", "sample_rate_hz": 8000, "payload": ""}),
            "invalid_audio_format",
        ),
        (
            audio(audio={"encoding": "mulaw", "sample_rate_hz": 16000, "payload": ""}),
            "invalid_audio_format",
        ),
        (
            audio(audio={"encoding": "mulaw", "sample_rate_hz": 8000, "payload": "***"}),
            "invalid_message",
        ),
        (
            audio(
                audio={
                    "encoding": "mulaw",
                    "sample_rate_hz": 8000,
                    "payload": base64.b64encode(b"x" * 20000).decode(),
                }
            ),
            "message_too_large",
        ),
        (audio(audio="x"), "invalid_message"),
        ('{"type":"control","action":"dance"}', "unknown_control_action"),
        ('{"type":"control"}', "unknown_control_action"),
        ('{"type":"control","action":["mute"]}', "unknown_control_action"),
        ('{"type":"control","action":"mute","speaker":"robot"}', "invalid_message"),
        ('"' + "x" * 300_000 + '"', "message_too_large"),
        ("[" * 50_000, "invalid_json"),
    ],
)
def test_bad_messages_have_codes(text: str, code: str) -> None:
    with pytest.raises(StreamError) as caught:
        parse(text)
    assert caught.value.code == code


def test_an_unknown_action_is_quoted_short() -> None:
    with pytest.raises(StreamError) as caught:
        parse(json.dumps({"type": "control", "action": "x" * 5000}))
    assert len(caught.value.message) < 200
