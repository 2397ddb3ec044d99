"""kallrec.download_links: one signer, two kinds of link that never stand in for each other."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from kallrec import download_links as dl

SECRET = b"s" * 64
NOW = 1_800_000_000.0


def playback_query(link_id: str = "lnk_A", expires: int = int(NOW) + 60) -> dict[str, str]:
    path = dl.playback_path(SECRET, link_id, expires)
    assert urlsplit(path).path == f"/v1/playback/{link_id}/audio"
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def test_a_genuine_playback_link_verifies_until_it_expires() -> None:
    q = playback_query()
    assert dl.verify_playback(SECRET, "lnk_A", q["expires"], q["signature"], NOW) == NOW + 60
    with pytest.raises(dl.ExpiredLink):
        dl.verify_playback(SECRET, "lnk_A", q["expires"], q["signature"], NOW + 60)


def test_audio_and_peaks_urls_share_one_signature() -> None:
    audio = dl.playback_path(SECRET, "lnk_A", 5)
    peaks = dl.playback_path(SECRET, "lnk_A", 5, "peaks")
    assert audio.replace("/audio?", "/peaks?") == peaks


@pytest.mark.parametrize(
    ("link_id", "expires", "signature", "param"),
    [
        ("lnk_B", None, None, "signature"),  # another link's id
        ("lnk_A", "1900000000", None, "signature"),  # a later expiry
        ("lnk_A", "", None, "signature"),  # incomplete
        ("lnk_A", "12e3", None, "expires"),  # not digits
        ("lnk_A", "9" * 13, None, "expires"),  # longer than any Unix time we sign
        ("lnk_A", None, "", "signature"),
        ("lnk_A", None, "x" * 43, "signature"),
        ("lnk_A", None, "é" * 43, "signature"),  # not ASCII: refused, never an exception
    ],
)
def test_an_altered_playback_link_is_invalid(
    link_id: str, expires: str | None, signature: str | None, param: str
) -> None:
    q = playback_query()
    with pytest.raises(dl.InvalidLink) as caught:
        dl.verify_playback(
            SECRET,
            link_id,
            q["expires"] if expires is None else expires,
            q["signature"] if signature is None else signature,
            NOW,
        )
    assert caught.value.param == param


def test_another_secret_makes_every_link_invalid() -> None:
    q = playback_query()
    with pytest.raises(dl.InvalidLink):
        dl.verify_playback(b"t" * 64, "lnk_A", q["expires"], q["signature"], NOW)


def test_a_download_signature_is_never_a_playback_signature() -> None:
    expires = int(NOW) + 60
    download = dl.signed_path(SECRET, "lnk_A", "mp3", 8000, expires)
    signature = parse_qs(urlsplit(download).query)["signature"][0]
    with pytest.raises(dl.InvalidLink):
        dl.verify_playback(SECRET, "lnk_A", str(expires), signature, NOW)
    # and the download signature itself still verifies as before (its message is unchanged)
    assert dl.verify(SECRET, "lnk_A", "mp3", "8000", str(expires), signature, NOW) == ("mp3", 8000)
