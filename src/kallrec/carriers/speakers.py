"""Which speaker a carrier's track is (spec §6.1, issue 14 item 3).

A carrier names its tracks from its own side: ``inbound`` is what it receives from the phone
network on the leg the stream is attached to, ``outbound`` what it sends there. On an inbound
call (the default) the leg is the caller's: ``inbound`` is the customer and ``outbound`` the
agent. On an outbound call (``routing.direction: "outbound"``) the leg is the one the agent's
system placed, and the customer is whom it called: the mapping is swapped. A single mixed
track (Vonage's socket, or any track kallrec does not know) lands on the inbound track's
speaker: the session's ``mixed`` recording is then that one track, as it should be.
"""

from __future__ import annotations

INBOUND_NAMES = ("inbound", "inbound_track")
OUTBOUND_NAMES = ("outbound", "outbound_track")
SPEAKERS = ("agent", "customer")


def speaker_for(track: str, direction: str | None) -> str:
    if track in SPEAKERS:  # Kallglot's older audio names the speaker itself
        return track
    inbound, outbound = ("agent", "customer") if direction == "outbound" else ("customer", "agent")
    if track in OUTBOUND_NAMES:
        return outbound
    return inbound
