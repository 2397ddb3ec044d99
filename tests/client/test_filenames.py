"""File names from Content-Disposition, made safe; names for bulk downloads."""

from __future__ import annotations

import pytest

from kallrec.client import Recording, bulk_items, filename_from_disposition, safe_filename
from kallrec.client._filenames import with_suffix

FALLBACK = "rec_1.mp3"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="recording-sess_1.mp3"', "recording-sess_1.mp3"),
        ("attachment; filename=plain.mp3", "plain.mp3"),
        (r'attachment; filename="say \"hi\".mp3"', 'say "hi".mp3'),
        ("attachment; filename*=UTF-8''caf%C3%A9%20call.mp3", "café call.mp3"),
        # filename* wins over filename, whatever the order.
        ("attachment; filename*=utf-8''n%C3%A9.mp3; filename=\"ne.mp3\"", "né.mp3"),
        ("attachment; filename=\"ne.mp3\"; filename*=UTF-8''n%C3%A9.mp3", "né.mp3"),
        ("attachment; filename*=iso-8859-1''%E9t%E9.mp3", "été.mp3"),
        # An undecodable filename* falls back to filename.
        ("attachment; filename*=UTF-8''%FF%FE.mp3; filename=\"ok.mp3\"", "ok.mp3"),
        ("attachment; filename*=klingon''x.mp3; filename=\"ok.mp3\"", "ok.mp3"),
        ("attachment", None),
        ("", None),
        (None, None),
    ],
)
def test_content_disposition(header: str | None, expected: str | None) -> None:
    assert filename_from_disposition(header) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("recording-sess_1.mp3", "recording-sess_1.mp3"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("/abs/path/x.mp3", "x.mp3"),
        ('say "hi".mp3', "say _hi_.mp3"),
        ("a\x00b\r\nc\x1b[31m.mp3", "abc[31m.mp3"),
        ("evil\u202egnp.mp3", "evilgnp.mp3"),  # a bidi override would disguise the extension
        ("a<b>c:d|e?f*.mp3", "a_b_c_d_e_f_.mp3"),
        ("..", FALLBACK),
        ("../", FALLBACK),
        ("...hidden.mp3", "hidden.mp3"),
        ("   ", FALLBACK),
        ("", FALLBACK),
        (None, FALLBACK),
        ("CON.mp3", "_CON.mp3"),
        ("trailing. ", "trailing"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name, FALLBACK) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_filename("é" * 300 + ".mp3", FALLBACK)
    assert name.endswith(".mp3")
    assert len(name.encode()) <= 200


def test_with_suffix() -> None:
    assert with_suffix("recording-sess_1.mp3", "-agent") == "recording-sess_1-agent.mp3"
    assert with_suffix("noext", "-agent") == "noext-agent"
    assert with_suffix("x.mp3", "") == "x.mp3"


def test_bulk_names_are_unique_and_stable() -> None:
    recs = [
        Recording("rec_1", session_id="s1", channel="mixed"),
        Recording("rec_2", session_id="s1", channel="agent"),
        Recording("rec_3", session_id="s1", channel="customer"),
        Recording("rec_4", session_id="s2", channel="mixed"),
        Recording("rec_5", session_id="s3", channel="agent"),
        Recording("rec_6", session_id="s3", channel="agent"),
        Recording("rec_1", session_id="s1", channel="mixed"),  # listed twice
    ]
    suffixes = {i.recording_id: i.name_suffix for i in bulk_items(recs)}
    assert suffixes == {
        "rec_1": "",
        "rec_2": "-agent",
        "rec_3": "-customer",
        "rec_4": "",
        "rec_5": "-agent-rec_5",
        "rec_6": "-agent-rec_6",
    }
    assert bulk_items(list(reversed(recs))) == sorted(
        bulk_items(recs), key=lambda i: [r.id for r in reversed(recs)].index(i.recording_id)
    )
