"""Stream tokens carry their mode and are bound to their session by the server's secret."""

from __future__ import annotations

from kallrec.live.stream_tokens import current_shape, issued_for, mint

SECRET = b"s" * 32


def test_a_token_names_its_mode_and_opens_only_its_session() -> None:
    live, test = mint("sess_A", True, SECRET), mint("sess_A", False, SECRET)
    assert live.startswith("kst_live_") and test.startswith("kst_test_")
    assert current_shape(live) and current_shape(test)
    assert issued_for(live, "sess_A", SECRET)
    assert not issued_for(live, "sess_B", SECRET)
    assert not issued_for(live, "sess_A", b"another replica's secret")
    assert mint("sess_A", True, SECRET) != live  # random, not derived


def test_altered_and_earlier_tokens_were_not_issued_for_anything() -> None:
    token = mint("sess_A", True, SECRET)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert not issued_for(flipped, "sess_A", SECRET)
    assert not issued_for(token.replace("kst_live_", "kst_test_"), "sess_A", SECRET)
    earlier = "kst_" + "x" * 32  # the shape minted before tokens went to write keys only
    assert not current_shape(earlier) and not issued_for(earlier, "sess_A", SECRET)
    for junk in ("", "kst_", token + "x", token[:-1], "kst_live_" + "?" * 44):
        assert not issued_for(junk, "sess_A", SECRET)
