"""Language codes as sessions take them: BCP 47's common shape, ISO 639-1 when two letters."""

from __future__ import annotations

import pytest

from kallrec.languages import ISO_639_1, is_language_code


@pytest.mark.parametrize(
    "code", ["de", "EN", "en-US", "pt-BR", "zh-Hant", "zh-Hant-TW", "es-419", "yue", "fil", "iw"]
)
def test_accepted(code: str) -> None:
    assert is_language_code(code)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "x",
        "xx",
        "english",
        "de_DE",
        "en-",
        "-en",
        "en-US-x-foo",
        "en-U",
        "de-DEU1",
        "ü",
        "de\n",
    ],
)
def test_refused(code: str) -> None:
    assert not is_language_code(code)


@pytest.mark.parametrize("value", [None, 5, ["de"], {"de": 1}])
def test_only_strings(value: object) -> None:
    assert not is_language_code(value)


def test_the_list_is_iso_639_1_and_the_withdrawn_codes() -> None:
    assert len(ISO_639_1) == 184 + 6 and all(len(c) == 2 and c.isalpha() for c in ISO_639_1)
