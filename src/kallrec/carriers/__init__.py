"""The carriers' media-stream dialects, as pure adapters (issue 14, spec §6.1).

Each module turns one carrier's WebSocket frames into the small values of ``events``: the
stream's start (its authentication material, tracks and media format), media (a track, a
timestamp when the carrier sends one, the payload as sent), DTMF, marks and the stop. Nothing
here does I/O: the WebSocket handler (``kallrec.api.carrier_stream``) authenticates, maps tracks
to speakers (``speakers``), converts the audio (``codec``) and feeds the session's one track
writer, exactly as ``audio.input`` does.

``docs/carriers.md`` holds every message shape relied on here, with its source.
"""
