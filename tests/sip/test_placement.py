from __future__ import annotations

from kallrec.sip.placement import Placement


def test_packets_of_one_ssrc_are_placed_by_their_timestamps_not_their_arrival() -> None:
    place = Placement()
    assert place.place(1, 1000, 50_000, 160) == 50_000
    # Arrived 35 ms late (jitter): still 20 ms after the first.
    assert place.place(1, 1160, 50_055, 160) == 50_020
    # A gap the sender left (silence suppression): its length from the timestamps.
    assert place.place(1, 1000 + 8 * 500, 50_300, 160) == 50_500
    assert place.end_ms == 50_520


def test_timestamps_wrap_around_32_bits() -> None:
    place = Placement()
    start = 2**32 - 160
    assert place.place(1, start, 10_000, 160) == 10_000
    assert place.place(1, 0, 10_020, 160) == 10_020
    assert place.place(1, 160, 10_040, 160) == 10_040


def test_a_new_ssrc_starts_at_its_arrival_but_never_over_earlier_audio() -> None:
    place = Placement()
    place.place(1, 0, 10_000, 160)
    place.place(1, 160, 10_020, 160)  # ends at 10_040
    assert place.place(2, 999_999, 10_030, 160) == 10_040
    assert place.place(2, 999_999 + 160, 10_050, 160) == 10_060
    assert place.place(3, 5, 20_000, 160) == 20_000


def test_a_timestamp_reset_without_a_new_ssrc_reanchors_at_arrival() -> None:
    place = Placement()
    place.place(1, 8_000_000, 10_000, 160)
    assert place.place(1, 0, 10_020, 160) == 10_020
    assert place.reanchored == 1


def test_a_long_silence_with_a_frozen_clock_keeps_its_real_length() -> None:
    place = Placement()
    place.place(1, 0, 10_000, 160)
    # 8 s later, the timestamps moved on only 20 ms (a sender that froze its clock on hold).
    assert place.place(1, 160, 18_000, 160) == 18_000


def test_after_a_reinvite_a_short_pause_counts_too() -> None:
    place = Placement()
    place.place(1, 0, 10_000, 160)
    place.resync()
    assert place.place(1, 160, 11_500, 160) == 11_500
    # Without a re-INVITE, a 1.5 s pause of a frozen clock is not taken for a hold.
    other = Placement()
    other.place(1, 0, 10_000, 160)
    assert other.place(1, 160, 11_500, 160) == 10_020


def test_reordered_packets_after_a_resync_do_not_reanchor() -> None:
    place = Placement()
    place.place(1, 0, 10_000, 160)
    place.place(1, 160, 10_020, 160)
    place.resync()
    assert place.place(1, 320, 10_040, 160) == 10_040
