"""The ready-to-paste markup that points a carrier's media stream at a session (issue 14 item 4).

A session created with ``routing.type`` set to a carrier carries, in its ``stream``, the URL that
carrier should open and the markup that makes it do so, token filled in:

- Twilio and SignalWire: TwiML/LaML ``<Start><Stream track="both_tracks">`` with the token as a
  ``<Parameter>`` (a Stream URL takes no query string), then the call goes on (``<Dial>``…): the
  recording pattern. ``<Connect><Stream>``, as in Kallglot's guide, works as well, but Twilio
  then streams the caller's track only.
- Telnyx: TeXML ``<Start><Stream track="both_tracks">`` with ``token`` and ``session_id``
  ``<Parameter>``s (Kallglot's guide); for Call Control's ``streaming_start``, ``stream_url``
  with ``?token=`` (``call_control``).
- Vonage: an NCCO ``connect`` action to a ``websocket`` endpoint at 16 kHz, the token in its
  ``headers``.
- Plivo: ``<Stream>`` XML with the token in the URL's query (``extraHeaders`` allow letters and
  digits only), both tracks at 16 kHz, ``keepCallAlive`` off so the call goes on.

The stream token lives five minutes (spec §4): answer the carrier's webhook with this markup
when the call arrives, or GET the session for a fresh one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

CARRIERS = ("twilio", "signalwire", "telnyx", "vonage", "plivo")
_THEN = "<!-- then connect the call as usual, e.g. <Dial>+14155550100</Dial> -->"


def with_token(url: str, token: str) -> str:
    return f"{url}?token={quote(token, safe='')}"


def for_carrier(carrier: str, url: str, token: str, session_id: str) -> dict[str, Any] | None:
    """``{type, url, markup_type, markup[, call_control]}``, or None for no carrier (sip)."""
    if carrier in ("twilio", "signalwire"):
        markup = _xml(
            f'  <Start>\n    <Stream url={quoteattr(url)} track="both_tracks">\n'
            f'      <Parameter name="token" value={quoteattr(token)}/>\n'
            f"    </Stream>\n  </Start>\n  {_THEN}\n"
        )
        kind = "twiml" if carrier == "twilio" else "laml"
        return {"type": carrier, "url": url, "markup_type": kind, "markup": markup}
    if carrier == "telnyx":
        markup = _xml(
            f'  <Start>\n    <Stream url={quoteattr(url)} track="both_tracks">\n'
            f'      <Parameter name="token" value={quoteattr(token)}/>\n'
            f'      <Parameter name="session_id" value={quoteattr(session_id)}/>\n'
            f"    </Stream>\n  </Start>\n  {_THEN}\n"
        )
        return {
            "type": carrier,
            "url": url,
            "markup_type": "texml",
            "markup": markup,
            "call_control": {"stream_url": with_token(url, token), "stream_track": "both_tracks"},
        }
    if carrier == "vonage":
        ncco = [
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": url,
                        "content-type": "audio/l16;rate=16000",
                        "headers": {"token": token, "session_id": session_id},
                    }
                ],
            }
        ]
        return {"type": carrier, "url": url, "markup_type": "ncco", "markup": ncco}
    if carrier == "plivo":
        stream_url = with_token(url, token)
        markup = _xml(
            '  <Stream bidirectional="false" audioTrack="both" '
            'contentType="audio/x-l16;rate=16000" keepCallAlive="false">'
            f"{escape(stream_url)}</Stream>\n  {_THEN}\n"
        )
        return {"type": carrier, "url": stream_url, "markup_type": "plivo_xml", "markup": markup}
    return None


def _xml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n{body}</Response>\n'
