"""The storage key layout: one place names every kind of object."""

from __future__ import annotations

from kallrec.object_keys import (
    audio_key,
    converted_key,
    converted_keys,
    import_staging_key,
    live_staging_key,
)


def test_each_kind_of_object_has_its_own_prefix() -> None:
    assert audio_key("org_1", "rec_1") == "recordings/org_1/rec_1.mp3"
    assert import_staging_key("rec_1") == "staging/rec_1.pcm"
    assert converted_key("rec_1", "wav", 16000) == "converted/rec_1/16000.wav"


def test_live_staging_keys_differ_per_attempt() -> None:
    first, second = live_staging_key("rec_1"), live_staging_key("rec_1")
    assert first != second
    assert first.startswith("staging/rec_1-") and first.endswith(".pcm")


def test_converted_keys_cover_every_conversion_but_the_original() -> None:
    keys = converted_keys("rec_1")
    assert "converted/rec_1/8000.mp3" not in keys  # the recording itself is never copied
    assert "converted/rec_1/8000.wav" in keys
    assert len(keys) == len(set(keys))
